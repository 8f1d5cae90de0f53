"""Preemption's victim search from the indexes (``find_victims``: reclaimable jobs met
with a pool's jobs by set operations, no greedy pass where the gang already fits, a stop
at a set without victims) decides exactly as the former scan (``find_victims_scan``, a
membership test per job of every pool): called side by side on random states, and in a
scheduler with ``_victim_index`` on against one with it off, cycle after cycle, on
preemption-heavy queues (priorities, preemptible work, tenants borrowing beyond their
guarantees and others reclaiming it)."""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lockstep import fleet_gpus, run_in_lockstep
from sched_helpers import pool
from test_core_memo_exact import fleets, request

from hypothesis_budget import examples
from intercloud.model import PricingKind
from intercloud.scheduler import preemption
from intercloud.scheduler.core import Scheduler
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.fleet.state import FleetState
from intercloud.scheduler.preemption import find_victims, find_victims_scan
from intercloud.scheduler.requests import DecisionKind, GangRequest, TenantSpec
from intercloud.scheduler.tenancy import TenantLedger
from intercloud.scheduler.tenancy.ledger import Reclaimable


def _tenants(draw: st.DrawFn) -> list[TenantSpec]:
    # "a" borrows a lot (guarantee 0 or 8), "b" and "c" hold guarantees they reclaim
    return [
        TenantSpec("a", guaranteed_gpus={"H100": draw(st.sampled_from((0, 8)))}),
        TenantSpec("b", guaranteed_gpus={"H100": draw(st.sampled_from((16, 32))), "A100": 16}),
        TenantSpec("c", guaranteed_gpus={"A100": draw(st.sampled_from((8, 32)))}),
    ]


def _request(data: st.DataObject, job_id: int, now: float) -> GangRequest:
    r = request(data.draw, job_id, now)
    # mostly low-priority preemptible work, now and then urgent gangs; long runs so the
    # fleet fills and later gangs must preempt or reclaim
    return replace(
        r,
        tenant=data.draw(st.sampled_from(("a", "a", "b", "c"))),
        priority=data.draw(st.sampled_from((0, 0, 0, 1, 2, 3))),
        preemptible=data.draw(st.sampled_from((True, True, False))),
        duration_s=data.draw(st.sampled_from((None, 1000.0, 5000.0))),
    )


@settings(max_examples=examples(150), deadline=None)
@given(
    pools=fleets(),
    data=st.data(),
    with_ledger=st.sampled_from((True, True, False)),
    caps=st.booleans(),
    costs=st.booleans(),
)
def test_indexed_victim_search_never_changes_a_decision(
    pools: list[PoolSpec], data: st.DataObject, with_ledger: bool, caps: bool, costs: bool
) -> None:
    ledger = TenantLedger(_tenants(data.draw), fleet_gpus(pools)) if with_ledger else None
    run_in_lockstep(data, pools, ledger, caps, costs, "_victim_index", _request, max_new=12)


class _View(AbstractSet[int]):
    """A set known only through the ``Set`` protocol (``_in_pool``'s last branch)."""

    def __init__(self, ids: set[int]) -> None:
        self._ids = ids

    def __contains__(self, j: object) -> bool:
        return j in self._ids

    def __iter__(self) -> Iterator[int]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)


@settings(max_examples=examples(200), deadline=None)
@given(pools=fleets(), data=st.data())
def test_find_victims_is_the_scan(pools: list[PoolSpec], data: st.DataObject) -> None:
    """On a fleet filled by a borrowing tenant and low-priority work (checkpoints at
    random times), every search gives the scan's answer: each kind of reclaimable set,
    random protected jobs, with and without the per-pool memo."""
    ledger = TenantLedger(_tenants(data.draw), fleet_gpus(pools))
    state = FleetState(pools)
    filler = Scheduler(ledger=ledger, preemption=False, backfill=False, provisioning=False)
    queue = [_request(data, j, 0.0) for j in range(data.draw(st.integers(1, 16)))]
    for d in filler.schedule(state, queue, 0.0):
        assert d.kind != DecisionKind.PREEMPT
    for i, j in enumerate(sorted(state.allocations)):
        state.checkpoint(j, float(data.draw(st.integers(0, 60))) + i * 1e-3)
    memo_new: dict[tuple[int, int, bool, int], dict[int, int]] = {}
    memo_old: dict[tuple[int, int, bool, int], dict[int, int]] = {}
    for k in range(data.draw(st.integers(1, 6))):
        r = _request(data, 1000 + k, 60.0)
        cand = list(range(state.n_pools))
        pools_ = data.draw(st.permutations(cand)) if cand else cand
        running = sorted(state.allocations)
        protect: frozenset[int] = frozenset()
        if running:
            protect = frozenset(data.draw(st.lists(st.sampled_from(running))))
        recl: AbstractSet[int] = frozenset()
        kind = data.draw(st.sampled_from(("ledger", "set", "frozenset", "view", "none")))
        if r.gpus and kind != "none":
            view = ledger.reclaimable_ids(r.tenant, r.accelerators, r.gpus)
            assert isinstance(view, Reclaimable)
            recl = {
                "ledger": view,
                "set": set(view),
                "frozenset": frozenset(view),
                "view": _View(set(view)),
            }[kind]
        max_pools = data.draw(st.integers(1, 8))
        use_memo = data.draw(st.booleans())
        got = find_victims(
            state, r, pools_, 60.0, protect, recl, max_pools, memo_new if use_memo else None
        )
        want = find_victims_scan(
            state, r, pools_, 60.0, protect, recl, max_pools, memo_old if use_memo else None
        )
        assert got == want


def test_a_gang_that_fits_already_gets_no_victims_without_a_greedy_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The turn can fail on a pool whose aggregates say the gang fits (a reservation's
    nodes, vCPUs): the search answers an empty set at once, as the scan did after a
    greedy pass and a pruning in every pool, and reads the ledger's view by set
    operations (no membership call per job)."""
    pools = [pool("H100", gpus=8, nodes=4, pricing=PricingKind.ON_DEMAND, zone=z) for z in "ab"]
    ledger = TenantLedger(
        [TenantSpec("a"), TenantSpec("b", guaranteed_gpus={"H100": 32})], {"H100": 64}
    )
    state = FleetState(pools)
    s = Scheduler(ledger=ledger, preemption=False, backfill=False, provisioning=False)
    borrow = [GangRequest(j, "a", 1, 8, ("H100",), preemptible=False) for j in range(6)]
    assert all(d.kind == DecisionKind.PLACE for d in s.schedule(state, borrow, 0.0))
    r = GangRequest(99, "b", 1, 8, ("H100",), priority=1)
    view = ledger.reclaimable_ids("b", ("H100",), 8)
    assert len(view) == 6  # all of "a"'s work is borrowed, "b" is within its guarantee
    greedy: list[int] = []
    contains: list[object] = []
    real_greedy = preemption._greedy
    real_contains = Reclaimable.__contains__

    def counted_greedy(*a: object) -> object:
        greedy.append(1)
        return real_greedy(*a)  # type: ignore[arg-type]

    def counted_contains(v: Reclaimable, j: object) -> bool:
        contains.append(j)
        return real_contains(v, j)

    monkeypatch.setattr(preemption, "_greedy", counted_greedy)
    monkeypatch.setattr(Reclaimable, "__contains__", counted_contains)
    full, roomy = sorted((0, 1), key=lambda p: state.nodes_with_at_least(p, 8))
    assert state.nodes_with_at_least(full, 8) == 0 < state.nodes_with_at_least(roomy, 8)
    want = find_victims_scan(state, r, [roomy, full], 1.0, frozenset(), view)
    assert want is not None and want.jobs == () and want.pool == roomy
    assert greedy and contains
    greedy.clear()
    contains.clear()
    assert find_victims(state, r, [roomy, full], 1.0, frozenset(), view) == want
    assert not greedy and not contains
    # a full fleet: the greedy pass runs, one borrowed gang is reclaimed
    more = [GangRequest(j, "a", 1, 8, ("H100",), preemptible=False) for j in (6, 7)]
    assert all(d.kind == DecisionKind.PLACE for d in s.schedule(state, more, 1.0))
    view = ledger.reclaimable_ids("b", ("H100",), 8)
    got = find_victims(state, r, [0, 1], 2.0, frozenset(), view)
    assert got == find_victims_scan(state, r, [0, 1], 2.0, frozenset(), view)
    assert got is not None and len(got.jobs) == 1 and greedy


@settings(max_examples=examples(100), deadline=None)
@given(
    parts=st.lists(st.tuples(st.sets(st.integers(0, 40)), st.sets(st.integers(0, 40))), max_size=3),
    pool_jobs=st.sets(st.integers(0, 40)),
)
def test_among_is_membership(parts: list[tuple[set[int], set[int]]], pool_jobs: set[int]) -> None:
    """``Reclaimable.among`` is the membership test over a pool's jobs, the asking
    tenant's own borrowing jobs (``mine``, here overlapping ``every`` at random) left out."""
    view = Reclaimable(
        [(dict.fromkeys(every), dict.fromkeys(mine & every)) for every, mine in parts]
    )
    ids = dict.fromkeys(sorted(pool_jobs))
    assert view.among(ids) == {j for j in ids if j in view}
