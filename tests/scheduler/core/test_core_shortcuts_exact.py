"""The core's in-turn shortcuts never change a decision: once a gang has a refusal, pools
of an accelerator the ledger's quota refuses and pools of a provider the caps refuse are
skipped without a pick (and the turn stops when the quota refuses every accelerator);
preemption is skipped when no job of a lower priority runs on the gang's accelerators and
the ledger names none it may reclaim. A scheduler with them decides exactly as one with
``_shortcuts`` off (the plain turn), cycle after cycle, on random fleets and queues."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
from lockstep import flagged_scheduler, fleet_gpus, run_in_lockstep
from test_core_memo_exact import fleets, request

from hypothesis_budget import examples
from intercloud.scheduler.core import Scheduler
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.fleet.state import FleetState
from intercloud.scheduler.requests import GangRequest, TenantSpec
from intercloud.scheduler.tenancy import TenantLedger


def _scheduler(
    pools: list[PoolSpec], ledger: TenantLedger | None, caps: bool, costs: bool, on: bool
) -> Scheduler:
    return flagged_scheduler(pools, ledger, caps, costs, "_shortcuts", on)


def _request(data: st.DataObject, job_id: int, now: float) -> GangRequest:
    r = request(data.draw, job_id, now)
    # three tenants, longer runs (the fleet fills up), most gangs of priority 0
    return replace(
        r,
        tenant=data.draw(st.sampled_from(("a", "b", "c"))),
        priority=data.draw(st.sampled_from((0, 0, 1, 2))),
        duration_s=data.draw(st.sampled_from((None, 100.0, 1000.0))),
    )


@settings(max_examples=examples(150), deadline=None)
@given(
    pools=fleets(),
    data=st.data(),
    with_ledger=st.booleans(),
    caps=st.booleans(),
    costs=st.booleans(),
    budgets=st.booleans(),
)
def test_shortcuts_never_change_a_decision(
    pools: list[PoolSpec],
    data: st.DataObject,
    with_ledger: bool,
    caps: bool,
    costs: bool,
    budgets: bool,
) -> None:
    # small guarantees: quota refusals (with and without borrowing), reclaims of
    # borrowed work and budget refusals are frequent
    tenants = [
        TenantSpec(
            "a",
            guaranteed_gpus={"H100": data.draw(st.sampled_from((0, 8, 16)))},
            monthly_budget_usd=data.draw(st.sampled_from((50.0, 500.0))) if budgets else None,
        ),
        TenantSpec(
            "b",
            can_borrow=data.draw(st.booleans()),
            guaranteed_gpus={"A100": data.draw(st.sampled_from((0, 8))), "H100": 8},
        ),
        TenantSpec("c", guaranteed_gpus={"A100": data.draw(st.sampled_from((0, 16)))}),
    ]
    ledger = TenantLedger(tenants, fleet_gpus(pools)) if with_ledger else None
    run_in_lockstep(data, pools, ledger, caps, costs, "_shortcuts", _request, max_new=10)


def test_borrower_preempts_lower_priority_work_to_make_room() -> None:
    """A tenant that must borrow, with nothing idle, still preempts lower-priority work:
    the victims' GPUs become idle (``refuses_whatever_stops`` counts them)."""
    from sched_helpers import pool

    from intercloud.scheduler.requests import DecisionKind

    pools = [pool("H100", gpus=8, nodes=1)]
    for on in (True, False):
        ledger = TenantLedger([TenantSpec("a"), TenantSpec("b")], {"H100": 8})
        state = FleetState(pools)
        s = _scheduler(pools, ledger, caps=False, costs=False, on=on)
        low = GangRequest(1, "a", nodes=1, gpus_per_node=8, accelerators=("H100",))
        assert [d.kind for d in s.schedule(state, [low], 0.0)] == [DecisionKind.PLACE]
        high = GangRequest(2, "b", nodes=1, gpus_per_node=8, accelerators=("H100",), priority=2)
        got = s.schedule(state, [high], 1.0)
        assert [d.kind for d in got] == [DecisionKind.PREEMPT, DecisionKind.PLACE]
