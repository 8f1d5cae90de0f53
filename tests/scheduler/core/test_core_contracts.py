"""Contracts in the scheduler core: a gang that cannot finish or checkpoint before a
Capacity Block ends is never placed on it (``BLOCK_ENDS_TOO_SOON``), and pools that burn
a commitment behind schedule rank cheaper (``PoolCosts``'s ``burn`` weights)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from intercloud.model import Contract, PricingKind, ReservedBlock
from intercloud.scheduler.core import Scheduler
from intercloud.scheduler.cost import PoolCosts
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.fleet.state import FleetState
from intercloud.scheduler.reasons import ReasonCode
from intercloud.scheduler.requests import Decision, DecisionKind, GangRequest

K = PricingKind
H = 3600.0
T0 = datetime(2026, 2, 1, tzinfo=UTC)
T1 = datetime(2026, 3, 1, tzinfo=UTC)
#: The block's nodes stop at END (its end less 30 minutes: the snapshot's window).
START = datetime(2026, 2, 10, tzinfo=UTC).timestamp()
END = datetime(2026, 2, 12, tzinfo=UTC).timestamp()


def spec(provider: str, price: float, kind: K = K.ON_DEMAND, **kw: object) -> PoolSpec:
    return PoolSpec(provider, "r1", "r1a", "p5", kind, "H100", 8, 96, 1000, 1, 2, price, **kw)  # type: ignore[arg-type]


def block_pool(nodes: int = 2) -> PoolSpec:
    return PoolSpec("aws", "r1", "r1a", "p5", K.RESERVED, "H100", 8, 96, 1000, 1, nodes, 30.0,
                    contract="cb", window=(START, END), ends_hard=True)  # fmt: skip


CONTRACT = Contract("cb", "aws", (ReservedBlock("r1", "r1a", "p5", 2),), T0, T1, 30.0)


def gang(
    job_id: int, hours: float | None, every_h: float | None = None, **kw: object
) -> GangRequest:
    return GangRequest(
        job_id, "t", 1, 8, ("H100",),
        duration_s=None if hours is None else hours * H,
        checkpoint_interval_s=None if every_h is None else every_h * H,
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def schedule(
    pools: list[PoolSpec],
    queue: list[GangRequest],
    now: float,
    burn: dict[str, float] | None = None,
) -> list[Decision]:
    state = FleetState(pools, now_s=now)
    sched = Scheduler(costs=PoolCosts(pools, [CONTRACT], burn), provisioning=False)
    return sched.schedule(state, queue, now)


def by_job(out: list[Decision]) -> dict[int, Decision]:
    return {d.job_id: d for d in out if d.kind in (DecisionKind.PLACE, DecisionKind.HOLD)}


@pytest.mark.parametrize(
    ("hours", "every_h", "placed"),
    [
        (2.0, None, True),  # finishes 1 h before the end
        (3.0, None, True),  # exactly at the end
        (3.5, None, False),  # half an hour too long
        (10.0, 1.0, True),  # too long, but saves its work every hour
        (10.0, 4.0, False),  # its first checkpoint comes after the end
        (None, 2.5, True),  # unknown duration, checkpoints in time
        (None, None, False),  # unknown duration, never checkpoints
    ],
)
def test_a_gang_goes_on_a_capacity_block_only_if_it_finishes_or_checkpoints_in_time(
    hours: float | None, every_h: float | None, placed: bool
) -> None:
    now = END - 3 * H
    (d,) = schedule([block_pool()], [gang(1, hours, every_h)], now)
    if placed:
        assert d.kind is DecisionKind.PLACE and d.pool == 0
    else:
        assert d.kind is DecisionKind.HOLD and d.code is ReasonCode.BLOCK_ENDS_TOO_SOON
        assert "(Capacity Block): it ends in 3 h" in d.reason
        if hours is None:
            assert "no expected duration and no checkpoint interval" in d.reason


def test_a_gang_too_long_for_the_block_goes_on_demand_instead() -> None:
    pools = [block_pool(), spec("gcp", 90.0)]
    out = by_job(schedule(pools, [gang(1, 8.0), gang(2, 1.0)], END - 3 * H))
    assert (out[1].kind, out[1].pool) == (DecisionKind.PLACE, 1)
    assert (out[2].kind, out[2].pool) == (DecisionKind.PLACE, 0)  # the block: free


def test_a_long_gang_held_off_the_block_does_not_hold_a_short_one_of_its_shape() -> None:
    """The long gang's turn finds no pool; a shorter gang of the same shape, after it in
    the queue and in the next cycle, still takes the block (no shared "blocked" memo)."""
    pools = [block_pool()]
    state = FleetState(pools, now_s=END - 3 * H)
    sched = Scheduler(costs=PoolCosts(pools, [CONTRACT]), provisioning=False)
    long, short = gang(1, 9.0, priority=5), gang(2, 1.0)
    out = by_job(sched.schedule(state, [long], END - 3 * H))
    assert out[1].code is ReasonCode.BLOCK_ENDS_TOO_SOON
    out = by_job(sched.schedule(state, [long, short], END - 2.5 * H))
    assert out[1].kind is DecisionKind.HOLD and out[2].kind is DecisionKind.PLACE


def test_the_block_is_unusable_outside_its_own_window() -> None:
    pools = [block_pool(), spec("gcp", 90.0)]
    # the contract's term runs all February; the block only from the 10th to the 12th
    for now in (START - H, END, END + H):
        (d,) = schedule(pools, [gang(1, 0.5)], now)
        assert (d.kind, d.pool) == (DecisionKind.PLACE, 1), now
    (d,) = schedule(pools, [gang(1, 0.5)], START)
    assert (d.kind, d.pool) == (DecisionKind.PLACE, 0)


def test_a_commitment_behind_schedule_wins_the_tie_break_of_prices() -> None:
    """AWS $98 vs GCP $88: GCP first, unless 20% of the AWS commitment is projected to
    go unused (AWS then ranks at $78.40); spot pools do not burn a commitment."""
    pools = [spec("aws", 98.0), spec("gcp", 88.0), spec("aws", 80.0, K.SPOT)]
    now = START
    (d,) = schedule(pools[:2], [gang(1, 1.0)], now)
    assert d.pool == 1
    (d,) = schedule(pools[:2], [gang(1, 1.0)], now, burn={"aws": 0.2})
    assert d.pool == 0
    (d,) = schedule(pools[:2], [gang(1, 1.0)], now, burn={"aws": 0.05})  # $93.10 > $88
    assert d.pool == 1
    costs = PoolCosts(pools, [], {"aws": 0.2, "gcp": 0.0})
    from intercloud.model import SpotPolicy

    ids, usd = costs.ranked_usd_per_hour(gang(1, 1.0, spot=SpotPolicy.ALLOWED), now)
    assert ids.tolist() == [0, 2, 1]  # 78.40, 80 (spot, no burn), 88
    assert usd.tolist() == pytest.approx([98.0, 80.0, 88.0])  # prices stay the pools' own


def test_the_cost_plan_prices_pools_as_they_rank() -> None:
    """Two classes of gangs compete for GCP's one node (a cycle with a cost plan): with
    AWS's commitment 20% behind, AWS is the cheaper rank for both and both go there
    (the plan prices pools with the same burn weights as the ranking)."""
    pools = [spec("aws", 98.0), spec("gcp", 88.0)]
    queue = [gang(1, 1.0), replace(gang(2, 1.0), gpus_per_node=4)]

    def run(burn: dict[str, float] | None) -> dict[int, int]:
        state = FleetState(pools, initial_nodes={0: 2, 1: 1}, now_s=START)
        sched = Scheduler(costs=PoolCosts(pools, [CONTRACT], burn), provisioning=False)
        return {j: d.pool for j, d in by_job(sched.schedule(state, queue, START)).items()}

    assert run({"aws": 0.2}) == {1: 0, 2: 0}
    assert sorted(run(None).values()) == [0, 1]  # one of them on GCP's node
