"""Property tests of the fleet scheduler on random fleets and queues: no node
over-allocated, gangs all or nothing, topology respected, caps and budgets respected,
determinism, and inclusion-minimal preemption."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from hypothesis_budget import examples
from intercloud.model import PricingKind, SpotPolicy, Topology
from intercloud.scheduler.core import Scheduler, requeue
from intercloud.scheduler.cost.caps import DiversificationCaps
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.fleet.state import FleetState
from intercloud.scheduler.preemption import find_victims, fits_after
from intercloud.scheduler.requests import Decision, DecisionKind, GangRequest, TenantSpec
from intercloud.scheduler.tenancy import TenantLedger

ACCS = ("H100", "A100")


@st.composite
def pools(draw: st.DrawFn) -> list[PoolSpec]:
    out = []
    for i in range(draw(st.integers(1, 4))):
        gpus = draw(st.sampled_from((4, 8)))
        npd = draw(st.sampled_from((1, 2, 4)))
        nodes = npd * draw(st.integers(1, 3))
        out.append(
            PoolSpec(
                provider=draw(st.sampled_from(("aws", "gcp"))),
                region=draw(st.sampled_from(("r1", "r2"))),
                zone=f"z{i}",
                instance_type=f"i{i}",
                pricing=draw(st.sampled_from(list(PricingKind))),
                accelerator=draw(st.sampled_from(ACCS)),
                gpus_per_node=gpus,
                vcpus_per_node=64.0,
                memory_gib_per_node=256.0,
                nodes_per_domain=npd,
                max_nodes=nodes,
                usd_per_node_hour=draw(st.sampled_from((1.0, 5.0, 20.0))),
                provision_delay_s=draw(st.sampled_from((0.0, 30.0))),
            )
        )
    return out


@st.composite
def requests(draw: st.DrawFn, start: int = 0) -> list[GangRequest]:
    out = []
    for i in range(draw(st.integers(1, 12))):
        out.append(
            GangRequest(
                job_id=start + i,
                tenant=draw(st.sampled_from(("a", "b"))),
                nodes=draw(st.integers(1, 4)),
                gpus_per_node=draw(st.sampled_from((1, 2, 4, 8))),
                accelerators=draw(st.sampled_from(((ACCS[0],), (ACCS[1],), ACCS))),
                vcpus_per_node=draw(st.sampled_from((0.0, 8.0))),
                priority=draw(st.integers(0, 3)),
                submit_s=float(draw(st.integers(0, 5))),
                topology=draw(st.sampled_from(list(Topology))),
                spot=draw(st.sampled_from(list(SpotPolicy))),
                duration_s=draw(st.sampled_from((None, 20.0, 100.0))),
                preemptible=draw(st.booleans()),
            )
        )
    return out


def check_decisions(
    state: FleetState,
    queue: list[GangRequest],
    ds: list[Decision],
    caps: DiversificationCaps,
    before: tuple[dict[str, float], int],
) -> None:
    by_id = {r.job_id: r for r in queue}
    final = [
        d for d in ds if d.kind in (DecisionKind.PLACE, DecisionKind.HOLD, DecisionKind.REJECT)
    ]
    assert sorted(d.job_id for d in final) == sorted(by_id), "one decision per queued gang"
    for d in ds:
        if d.kind in (DecisionKind.HOLD, DecisionKind.REJECT):
            assert d.reason, "every hold or rejection says why"
        if d.kind != DecisionKind.PLACE:
            continue
        r = by_id[d.job_id]
        spec = state.pools[d.pool]
        assert len(d.node_ids) == r.nodes == len(set(d.node_ids)), "all or nothing"
        assert all(int(state.pool[n]) == d.pool for n in d.node_ids), "one pool"
        assert spec.accelerator in r.accelerators and r.gpus_per_node <= spec.gpus_per_node
        if r.topology == Topology.NVLINK_DOMAIN:
            assert len({int(state.domain[n]) for n in d.node_ids}) == 1, "one NVLink domain"
        if r.spot == SpotPolicy.NEVER:
            assert spec.pricing != PricingKind.SPOT
        if r.spot == SpotPolicy.ONLY:
            assert spec.pricing == PricingKind.SPOT
    # every placement on a capped pool kept its provider within its share, replaying the
    # cycle's decisions in order from the fleet before it (caps bind when placing only)
    by, total = dict(before[0]), before[1]
    for d in ds:
        if d.kind == DecisionKind.PREEMPT:
            a = state.evicted[d.job_id]
            total -= a.gpus
            if state.pools[a.pool].pricing != PricingKind.RESERVED:
                by[state.pools[a.pool].provider] -= a.gpus
        elif d.kind == DecisionKind.PLACE:
            spec = state.pools[d.pool]
            gpus = by_id[d.job_id].gpus
            total += gpus
            if spec.pricing != PricingKind.RESERVED:
                by[spec.provider] = by.get(spec.provider, 0.0) + gpus
                if gpus:
                    g = by[spec.provider]
                    share = caps.share(spec.provider)
                    assert g <= share * total + 1e-9 or total <= caps.min_fleet_gpus, "cap"


def run(
    fleet: list[PoolSpec], queues: list[list[GangRequest]], finish: list[int]
) -> tuple[list[list[Decision]], FleetState]:
    state = FleetState(fleet, initial_nodes=[max(0, p.max_nodes - 2) for p in fleet])
    caps = DiversificationCaps(0.7, min_fleet_gpus=16)
    ledger = TenantLedger(
        [TenantSpec("a", guaranteed_gpus={"H100": 8}), TenantSpec("b", monthly_budget_usd=40.0)],
        {"H100": 16, "A100": 16},
    )
    s = Scheduler(ledger=ledger, caps=caps)
    pending: list[GangRequest] = []
    out = []
    now = 0.0
    for step, q in enumerate(queues):
        now += 10.0
        pending = pending + q
        before = (state.capped_gpus_by_provider(), state.allocated_gpus())
        ds = s.schedule(state, pending, now)
        check_decisions(state, pending, ds, caps, before)
        state.check_invariants()
        assert ledger.spent("b", now) + ledger.committed("b", now) <= 40.0 + 1e-6, "budget"
        out.append(ds)
        placed = {d.job_id for d in ds if d.kind == DecisionKind.PLACE}
        rejected = {d.job_id for d in ds if d.kind == DecisionKind.REJECT}
        pending = [r for r in pending if r.job_id not in placed | rejected] + requeue(state, ds)
        running = sorted(state.allocations)
        if running:
            s.finished(state, running[finish[step % len(finish)] % len(running)], now)
        if step == 1 and state.allocations:
            victim = max(state.allocations)
            out.append(s.node_failed(state, state.allocations[victim].nodes[0], now))
            pending += requeue(state, out[-1])
        state.check_invariants()
    return out, state


@settings(max_examples=60, deadline=None)
@given(
    pools(),
    st.lists(requests(), min_size=1, max_size=4),
    st.lists(st.integers(0, 50), min_size=1, max_size=4),
)
def test_random_fleets_keep_every_invariant_and_are_deterministic(
    fleet: list[PoolSpec], queues: list[list[GangRequest]], finish: list[int]
) -> None:
    # job ids unique across the steps
    fixed, nxt = [], 0
    for q in queues:
        fixed.append([GangRequest(**{**_fields(r), "job_id": nxt + i}) for i, r in enumerate(q)])
        nxt += len(q)
    a, _ = run(fleet, fixed, finish)
    b, _ = run(fleet, fixed, finish)
    assert a == b, "the same input gives the same decisions"


def _fields(r: GangRequest) -> dict[str, object]:
    return {f: getattr(r, f) for f in GangRequest.__slots__}


@settings(max_examples=examples(80), deadline=None)
@given(pools(), requests(), st.integers(0, 30), st.integers(1, 4), st.sampled_from(list(Topology)))
def test_preemption_frees_no_more_than_needed(
    fleet: list[PoolSpec], running: list[GangRequest], seed: int, nodes: int, topo: Topology
) -> None:
    state = FleetState(fleet)
    s = Scheduler(preemption=False, backfill=False, provisioning=False)
    low = [GangRequest(**{**_fields(r), "priority": 0, "preemptible": True}) for r in running]
    s.schedule(state, low, 0.0)
    for i, j in enumerate(sorted(state.allocations)):
        state.checkpoint(j, float((i * 7 + seed) % 40))
    big = GangRequest(999, "a", nodes, 4, ACCS, priority=9, topology=topo, spot=SpotPolicy.ALLOWED)
    pools_ = [p for p in range(state.n_pools) if state.pools[p].gpus_per_node >= 4]
    before = copy.deepcopy(state)
    found = find_victims(state, big, pools_, 50.0)
    if found is None:
        return
    vs = [state.allocations[j] for j in found.jobs]
    assert fits_after(state, found.pool, big, vs)
    for v in vs:
        assert not fits_after(state, found.pool, big, [w for w in vs if w is not v]), "minimal"
    # and it really makes room: the scheduler evicts exactly those and places the gang
    s2 = Scheduler(backfill=False, provisioning=False)
    ds = s2.schedule(before, [big], 50.0)
    assert ds[-1].kind == DecisionKind.PLACE
    before.check_invariants()
