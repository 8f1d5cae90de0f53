"""The cycle's cost plan (``cost.plan``) in the core: contested cheap capacity goes to
the gangs whose other options cost most, whatever the queue order, and it never changes
whether a gang starts when capacity is plentiful."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from sched_helpers import pool
from test_core_memo_exact import fleets, request

from hypothesis_budget import examples
from intercloud.model import PricingKind, SpotPolicy
from intercloud.scheduler.core import Scheduler
from intercloud.scheduler.cost.pool_cost import PoolCosts
from intercloud.scheduler.fleet.state import FleetState
from intercloud.scheduler.requests import DecisionKind, GangRequest

K = PricingKind


def gang(job: int, spot: SpotPolicy) -> GangRequest:
    return GangRequest(job, "t", 1, 8, ("H100",), spot=spot, duration_s=3600.0)


def hourly(state: FleetState, decisions: list) -> float:  # type: ignore[type-arg]
    cost = 0.0
    for d in decisions:
        if d.kind is DecisionKind.PLACE:
            spec = state.pools[d.pool]
            cost += 0.0 if spec.pricing is K.RESERVED else spec.usd_per_node_hour
    return cost


def test_reserved_nodes_go_to_the_gangs_without_a_cheap_fallback() -> None:
    pools = [
        pool(nodes=2, pricing=K.RESERVED, price=50.0),  # paid for: marginal cost 0
        pool(nodes=4, pricing=K.SPOT, price=8.0, zone="b"),
        pool(nodes=4, pricing=K.ON_DEMAND, price=80.0, zone="c"),
    ]
    # the two spot-tolerant gangs come first in the queue
    queue = [
        gang(1, SpotPolicy.ALLOWED),
        gang(2, SpotPolicy.ALLOWED),
        gang(3, SpotPolicy.NEVER),
        gang(4, SpotPolicy.NEVER),
    ]
    runs = {}
    for planned in (False, True):
        state = FleetState(pools)
        sched = Scheduler(queue_order="fifo", costs=PoolCosts(pools), cost_plan=planned)
        out = sched.schedule(state, queue, 0.0)
        assert all(d.kind is DecisionKind.PLACE for d in out)
        runs[planned] = ({d.job_id: d.pool for d in out}, hourly(state, out))
    assert runs[False] == ({1: 0, 2: 0, 3: 2, 4: 2}, 160.0)  # queue order: 2 x on-demand
    assert runs[True] == ({1: 1, 2: 1, 3: 0, 4: 0}, 16.0)  # the plan: 2 x spot


@settings(max_examples=examples(150), deadline=None)
@given(st.data())
def test_the_plan_changes_where_not_how_many_when_capacity_is_plentiful(
    data: st.DataObject,
) -> None:
    pools = data.draw(fleets())
    queue = [request(data.draw, j, 0.0) for j in range(data.draw(st.integers(1, 8)))]
    runs = []
    for planned in (False, True):
        state = FleetState(pools)
        sched = Scheduler(
            queue_order="fifo",
            costs=PoolCosts(pools),
            cost_plan=planned,
            preemption=False,
            backfill=False,
            provisioning=False,
        )
        out = sched.schedule(state, queue, 0.0)
        state.check_invariants()
        runs.append((state, out))
    placed = [{d.job_id for d in out if d.kind is DecisionKind.PLACE} for _, out in runs]
    # the same input gives the same decisions
    again = Scheduler(
        queue_order="fifo",
        costs=PoolCosts(pools),
        preemption=False,
        backfill=False,
        provisioning=False,
    ).schedule(FleetState(pools), queue, 0.0)
    assert again == runs[1][1]
    # where cheapest-first in queue order starts every gang, the plan does too
    if placed[0] == {r.job_id for r in queue}:
        assert placed[1] == placed[0]
