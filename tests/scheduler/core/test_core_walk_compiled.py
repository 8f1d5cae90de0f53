"""The compiled walk over held gangs (``scheduler/_walkc.c``) decides exactly as the
Python walk: a scheduler with ``_compiled_walk`` on decides as one with it off, cycle
after cycle, on random fleets and queues full of look-alike gangs (most of them held by
the fast path the compiled walk takes over)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_core_aggregate_exact import run_look_alikes
from test_core_memo_exact import fleets

from hypothesis_budget import examples
from intercloud.scheduler import core
from intercloud.scheduler.fleet.pools import PoolSpec

needs_walk = pytest.mark.skipif(core._WALK is None, reason="the compiled _walkc was not built")


@needs_walk
@settings(max_examples=examples(120), deadline=None)
@given(
    pools=fleets(),
    data=st.data(),
    with_ledger=st.booleans(),
    caps=st.booleans(),
    costs=st.booleans(),
)
def test_compiled_walk_decides_as_the_python_walk(
    pools: list[PoolSpec], data: st.DataObject, with_ledger: bool, caps: bool, costs: bool
) -> None:
    run_look_alikes(pools, data, with_ledger, caps, costs, "_compiled_walk")


@needs_walk
def test_the_compiled_walk_holds_look_alikes_without_a_python_turn() -> None:
    """A full fleet and 40 identical gangs: after the first cycle, ``_one`` runs twice a
    cycle (the head's turn, which reserves, and the class's fast HOLD); the compiled walk
    holds the other 38 with their kept HOLD."""
    from sched_helpers import pool

    from intercloud.model import PricingKind
    from intercloud.scheduler.core import Scheduler
    from intercloud.scheduler.fleet.state import FleetState
    from intercloud.scheduler.requests import DecisionKind, GangRequest

    pools = [pool("H100", gpus=8, nodes=2, pricing=PricingKind.RESERVED)]
    state = FleetState(pools)
    s = Scheduler(queue_order="fair_share")
    big = GangRequest(999, "a", 2, 8, ("H100",), priority=5)
    s.schedule(state, [big], 0.0)  # fills the fleet
    queue = [GangRequest(i, "a", 1, 8, ("H100",)) for i in range(40)]
    calls = 0
    inner = s._one

    def counted(*args: object) -> None:
        nonlocal calls
        calls += 1
        inner(*args)  # type: ignore[arg-type]

    s._one = counted  # type: ignore[method-assign]
    for t in range(1, 5):
        calls = 0
        out = s.schedule(state, queue, float(t))
        assert [d.kind for d in out] == [DecisionKind.HOLD] * 40
    assert calls == 2


@pytest.mark.parametrize("compiled", [True, False])
def test_a_turn_between_look_alikes_ends_their_fast_hold(compiled: bool) -> None:
    """FIFO queue: A1, then P (of a higher priority, preempts a running job and frees
    more than it takes), then A2 (A1's look-alike). A1 is held fast; after P's turn the
    kept HOLD no longer holds for A2, which takes its own turn and starts on the freed
    node, with the compiled walk as without it."""
    from sched_helpers import pool

    from intercloud.model import PricingKind
    from intercloud.scheduler.core import Scheduler
    from intercloud.scheduler.fleet.state import FleetState
    from intercloud.scheduler.requests import DecisionKind, GangRequest

    pools = [pool("H100", gpus=8, nodes=4, pricing=PricingKind.RESERVED)]
    state = FleetState(pools)
    s = Scheduler(queue_order="fifo", backfill=False, provisioning=False)
    s._compiled_walk = compiled
    low = GangRequest(900, "x", 2, 8, ("H100",), priority=0, submit_s=-10.0)
    keep = GangRequest(901, "x", 2, 8, ("H100",), priority=9, submit_s=-10.0, preemptible=False)
    s.schedule(state, [low, keep], 0.0)  # the fleet is full
    a1 = GangRequest(1, "a", 1, 8, ("H100",), submit_s=0.0)
    a2 = GangRequest(3, "a", 1, 8, ("H100",), submit_s=2.0)
    for t in (1.0, 2.0, 3.0):  # held, then held fast (kept HOLDs)
        assert {d.kind for d in s.schedule(state, [a1, a2], t)} == {DecisionKind.HOLD}
    p = GangRequest(2, "b", 1, 8, ("H100",), priority=5, submit_s=1.0)
    out = s.schedule(state, [a1, p, a2], 4.0)
    kinds = {d.job_id: d.kind for d in out if d.kind is not DecisionKind.PREEMPT}
    assert [d.job_id for d in out if d.kind is DecisionKind.PREEMPT] == [900]
    assert kinds == {1: DecisionKind.HOLD, 2: DecisionKind.PLACE, 3: DecisionKind.PLACE}


@needs_walk
@settings(max_examples=examples(60), deadline=None)
@given(pools=fleets(), data=st.data(), with_ledger=st.booleans())
def test_compiled_plan_counts_build_the_python_loops_cost_plan(
    pools: list[PoolSpec], data: st.DataObject, with_ledger: bool
) -> None:
    """The cost plan's counting (``_walkc.plan_counts``) on and off: each cycle's plan
    and its gangs' class keys are equal (not only the decisions they lead to)."""
    plans: dict[bool, list[object]] = {True: [], False: []}
    inner = core.Scheduler._plan

    def recorded(self: core.Scheduler, state: object, queue: object, order: object,
                 cyc: core._Cycle) -> None:  # fmt: skip
        inner(self, state, queue, order, cyc)  # type: ignore[arg-type]
        allot = None if cyc.plan is None else cyc.plan.allot
        plans[self._compiled_walk].append((allot, dict(cyc.plan_key)))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(core.Scheduler, "_plan", recorded)
        run_look_alikes(pools, data, with_ledger, False, True, "_compiled_walk")
    assert plans[True] == plans[False]


@needs_walk
def test_plan_counts_reads_slots_and_falls_back_to_attribute_lookup() -> None:
    """``plan_counts`` reads fields from slots by cached offset (``_walkc.c``); objects
    of other types (a ``__dict__``, a property) and a type changed after the offset was
    cached go through the normal lookup: the same counts as the Python loop's rule."""
    from types import SimpleNamespace

    from intercloud.scheduler.cost.plan import GangClass
    from intercloud.scheduler.requests import GangRequest

    walk = core._WALK
    assert walk is not None

    class Ent:
        __slots__ = ("r", "same")

        def __init__(self, r: object, same: int) -> None:
            self.r, self.same = r, same

    def reference(order: list[int], queue: list[object], jobs: dict[int, object],
                  same: dict[int, object], classes: dict[object, object],
                  keys: dict[int, object]) -> int:  # fmt: skip
        for pos, i in enumerate(order):
            r = queue[i]
            ent = jobs.get(r.job_id)  # type: ignore[attr-defined]
            if ent is None or ent.r is not r or ent.same < 0 or ent.same not in same:  # type: ignore[attr-defined]
                return pos
            ck = same[ent.same]  # type: ignore[attr-defined]
            c = None if ck is None else classes.get(ck)
            if c is not None:
                c.count += 1  # type: ignore[attr-defined]
                keys[r.job_id] = ck  # type: ignore[attr-defined]
        return len(order)

    def run(fn: object, mutate: bool) -> tuple[int, list[int], dict[int, object]]:
        reqs: list[object] = [GangRequest(j, "a", 1, 8, ("H100",)) for j in range(6)]
        reqs.append(SimpleNamespace(job_id=6))
        jobs: dict[int, object] = {j: Ent(r, j % 3) for j, r in enumerate(reqs[:5])}
        jobs[5] = SimpleNamespace(r=reqs[5], same=1)
        jobs[6] = Ent(reqs[6], 2)
        cls = {k: GangClass(k, [0], [1.0], 8, 8, 1, 0) for k in ("x", "y")}
        classes: dict[object, object] = {**cls, "z": SimpleNamespace(count=1)}
        same: dict[int, object] = {0: "x", 1: "z", 2: None}
        if mutate:
            same[1] = "y"
        keys: dict[int, object] = {}
        order = [6, 0, 5, 1, 2, 3, 4]
        at = fn(order, reqs, jobs, same, classes, keys, 0)  # type: ignore[operator]
        return at, [c.count for c in classes.values()], keys  # type: ignore[attr-defined]

    def ref(*a: object) -> int:
        return reference(*a[:6])  # type: ignore[arg-type]

    for mutate in (False, True):
        assert run(walk.plan_counts, mutate) == run(ref, mutate)
    assert run(walk.plan_counts, False)[0] == 7
    # the offset cached for Ent.same is stale once a property replaces the slot
    Ent.same = property(lambda self: -1, lambda self, v: None)  # type: ignore[assignment]
    assert run(walk.plan_counts, False) == run(ref, False)
    assert run(walk.plan_counts, False)[0] == 0  # every Ent reads -1 now: Python's turn
