"""The core's in-turn shortcuts never change a decision: once a gang has a refusal, pools
of an accelerator the ledger's quota refuses and pools of a provider the caps refuse are
skipped without a pick (and the turn stops when the quota refuses every accelerator);
preemption is skipped when no job of a lower priority runs on the gang's accelerators and
the ledger names none it may reclaim. A scheduler with them decides exactly as one with
``_shortcuts`` off (the plain turn), cycle after cycle, on random fleets and queues."""

from __future__ import annotations

import copy
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
from test_core_memo_exact import _apply, fleets, request

from hypothesis_budget import examples
from intercloud.scheduler.core import Scheduler
from intercloud.scheduler.cost.caps import DiversificationCaps
from intercloud.scheduler.cost.pool_cost import PoolCosts
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.fleet.state import FleetState
from intercloud.scheduler.requests import GangRequest, TenantSpec
from intercloud.scheduler.tenancy import TenantLedger


def _scheduler(
    pools: list[PoolSpec], ledger: TenantLedger | None, caps: bool, costs: bool, on: bool
) -> Scheduler:
    s = Scheduler(
        queue_order="fair_share",
        ledger=ledger,
        costs=PoolCosts(pools) if costs else None,
        caps=DiversificationCaps(0.5, min_fleet_gpus=8) if caps else None,
        reservation_pools=2,
        preemption_pools=2,
    )
    s._shortcuts = on
    return s


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
    fleet: dict[str, int] = {}
    for p in pools:
        if p.accelerator:
            fleet[p.accelerator] = fleet.get(p.accelerator, 0) + p.max_gpus
    ledger = TenantLedger(tenants, fleet) if with_ledger else None
    state_on = FleetState(pools)
    state_off = copy.deepcopy(state_on)
    ledger_off = copy.deepcopy(ledger)
    on = _scheduler(pools, ledger, caps, costs, True)
    off = _scheduler(pools, ledger_off, caps, costs, False)
    queue_on: list[GangRequest] = []
    queue_off: list[GangRequest] = []
    next_id = 0
    now = 0.0
    for _ in range(data.draw(st.integers(2, 8))):
        now += data.draw(st.sampled_from((0.0, 10.0, 200.0)))
        for _ in range(data.draw(st.integers(0, 10))):
            r = _request(data, next_id, now)
            next_id += 1
            queue_on.append(r)
            queue_off.append(r)
        ends = sorted((a.end_s, j) for j, a in state_on.allocations.items() if a.end_s <= now)
        for _, j in ends:
            on.finished(state_on, j, now)
            off.finished(state_off, j, now)
        got = on.schedule(state_on, queue_on, now)
        want = off.schedule(state_off, queue_off, now)
        assert got == want
        _apply(got, queue_on, state_on)
        _apply(want, queue_off, state_off)
    state_on.check_invariants()


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
