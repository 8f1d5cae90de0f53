"""Interchangeable gangs are decided once per class in a cycle and the decisions never
change: the cost plan groups a gang with an earlier one of the same shape, tenant,
provider preference and known-or-not duration without ranking it again, and a gang that
its class's fast HOLD would hold is held without a turn while no turn since could have
changed what that HOLD read. A scheduler with ``_aggregate`` on decides exactly as one
with it off, cycle after cycle, on random fleets and queues full of look-alike gangs."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from lockstep import flagged_scheduler, fleet_gpus, run_in_lockstep
from test_core_memo_exact import ACCS, fleets

from hypothesis_budget import examples
from intercloud.scheduler.core import Scheduler
from intercloud.scheduler.fleet.pools import PoolSpec, PricingKind
from intercloud.scheduler.fleet.state import FleetState
from intercloud.scheduler.requests import GangRequest, TenantSpec, Topology
from intercloud.scheduler.tenancy import TenantLedger

# few shapes, so that most gangs of a cycle have look-alikes
SHAPES = ((1, 8, Topology.ANY), (2, 8, Topology.ANY), (2, 4, Topology.NVLINK_DOMAIN))


def _scheduler(
    pools: list[PoolSpec], ledger: TenantLedger | None, caps: bool, costs: bool, on: bool
) -> Scheduler:
    return flagged_scheduler(pools, ledger, caps, costs, "_aggregate", on)


def _request(data: st.DataObject, job_id: int, now: float) -> GangRequest:
    nodes, gpn, topo = data.draw(st.sampled_from(SHAPES))
    return GangRequest(
        job_id=job_id,
        tenant=data.draw(st.sampled_from(("a", "b", "c"))),
        nodes=nodes,
        gpus_per_node=gpn,
        accelerators=data.draw(st.sampled_from(((ACCS[0],), ACCS))),
        priority=data.draw(st.sampled_from((0, 0, 1, 2))),
        submit_s=now,
        topology=topo,
        duration_s=data.draw(st.sampled_from((None, 100.0, 150.0, 1000.0))),
        preemptible=data.draw(st.booleans()),
    )


@settings(max_examples=examples(120), deadline=None)
@given(
    pools=fleets(),
    data=st.data(),
    with_ledger=st.booleans(),
    caps=st.booleans(),
    costs=st.booleans(),
)
def test_aggregation_never_changes_a_decision(
    pools: list[PoolSpec], data: st.DataObject, with_ledger: bool, caps: bool, costs: bool
) -> None:
    run_look_alikes(pools, data, with_ledger, caps, costs, "_aggregate")


def run_look_alikes(
    pools: list[PoolSpec], data: st.DataObject, with_ledger: bool, caps: bool, costs: bool,
    flag: str,
) -> None:  # fmt: skip
    """Lockstep runs of queues full of look-alike gangs, ``flag`` on against off."""
    tenants = [
        TenantSpec("a", guaranteed_gpus={"H100": data.draw(st.sampled_from((0, 8, 16)))}),
        TenantSpec("b", can_borrow=data.draw(st.booleans()), guaranteed_gpus={"H100": 8}),
        TenantSpec("c", guaranteed_gpus={"A100": data.draw(st.sampled_from((0, 16)))}),
    ]
    ledger = TenantLedger(tenants, fleet_gpus(pools)) if with_ledger else None
    run_in_lockstep(data, pools, ledger, caps, costs, flag, _request, max_new=20)


def test_look_alike_held_gangs_take_one_turn_per_class() -> None:
    """A full fleet and a queue of 40 identical gangs: after the first cycle, each cycle
    runs the turn of one gang of the class and holds the others without a turn."""
    from sched_helpers import pool

    pools = [pool("H100", gpus=8, nodes=2, pricing=PricingKind.RESERVED)]
    turns = {True: 0, False: 0}
    for on in (True, False):
        state = FleetState(pools)
        s = _scheduler(pools, None, caps=False, costs=True, on=on)
        inner = s._turn

        def counted(*args: object, _on: bool = on, _inner: object = inner) -> bool:
            turns[_on] += 1
            return _inner(*args)  # type: ignore[operator,no-any-return]

        s._turn = counted  # type: ignore[method-assign]
        big = [GangRequest(j, "a", nodes=1, gpus_per_node=8, accelerators=("H100",))
               for j in range(2)]  # fmt: skip
        s.schedule(state, big, 0.0)  # the fleet is full
        queue = [
            GangRequest(j, "a", nodes=1, gpus_per_node=8, accelerators=("H100",), submit_s=1.0)
            for j in range(10, 50)
        ]
        s.schedule(state, queue, 1.0)
        turns[on] = 0
        for t in (2.0, 3.0, 4.0):
            ds = s.schedule(state, queue, t)
            assert len(ds) == 40 and {d.kind.name for d in ds} == {"HOLD"}
    assert turns[False] == 3 * 40
    assert turns[True] <= 3 * 2
