"""Contracts on the live path: the fleet snapshot gives a Capacity Block's pool its own
window, ending 30 minutes before the block (``FleetPolicy.contracts``), the fleet
decider keeps gangs that cannot finish or checkpoint in time off it, and the burn
weights the ledger step stores (``contracts.accrual``) reach ``FleetPolicy.burn``
(``with_store_state``) and steer placement toward a commitment behind schedule."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from snapshot_helpers import AWS, BACKED, GCP, NOW, NOW_DT, SPOT, instance

from intercloud.contracts.accrual import BURN_SETTING, LedgerAccrual, burn_weights
from intercloud.contracts.ledger import accrue
from intercloud.control.decide import CapacityReason, Hold, PendingJob, Place, Release
from intercloud.control.fleet_decider import FleetDecider, FleetDecisions
from intercloud.control.snapshot import (
    FleetPolicy,
    PoolKind,
    SnapshotInputs,
    build_snapshot,
    with_store_state,
)
from intercloud.model import Contract, Payment, PricingKind, ReservedBlock
from intercloud.model.usage import UsageInterval
from intercloud.providers.contract import InstanceState as S
from intercloud.scheduler.reasons import ReasonCode
from intercloud.specs import load_spec_text
from intercloud.store import Store, open_store
from intercloud.store.records import InstanceRecord
from intercloud.store.testing import FakeClock

H = 3600.0


def capacity_block(ends_in_h: float) -> Contract:
    """A year-long AWS contract with one 2-node Capacity Block of AWS's offering that
    started a day ago and ends ``ends_in_h`` hours from NOW."""
    block = ReservedBlock(AWS.region, AWS.zone, AWS.instance_type, 2,
                          NOW_DT - timedelta(days=1), NOW_DT + timedelta(hours=ends_in_h),
                          31.5, Payment.UPFRONT, capacity_block=True)  # fmt: skip
    return Contract("cb", "aws", (block,), NOW_DT - timedelta(days=30),
                    NOW_DT + timedelta(days=335), 40.0)  # fmt: skip


def job(job_id: int, extra: str) -> PendingJob:
    text = (
        f"kind: training\nname: g{job_id}\nresources: {{accelerators: H100:8}}\n"
        f"run: 'true'\n{extra}"
    )
    return PendingJob(job_id, 0, load_spec_text(text).workload, "default", NOW - 100 + job_id)


def decide(
    pending: list[PendingJob], instances: list[InstanceRecord], policy: FleetPolicy
) -> FleetDecisions:
    inputs = SnapshotInputs([AWS, GCP], NOW, None, (), instances, BACKED, SPOT, None, policy)
    return FleetDecider().decide_fleet(pending, inputs)


def test_the_capacity_block_pool_ends_30_minutes_before_the_block() -> None:
    policy = FleetPolicy(contracts=[capacity_block(ends_in_h=3)])
    inputs = SnapshotInputs([AWS, GCP], NOW, None, (), (), BACKED, SPOT, None, policy)
    fleet = build_snapshot(inputs)
    (p,) = [i for i, pool in enumerate(fleet.pools) if pool.kind is PoolKind.RESERVED]
    spec = fleet.state.pools[p]
    assert spec.ends_hard and spec.window == (NOW - 86400, NOW + 2.5 * H)
    assert spec.usd_per_node_hour == 31.5  # the block's own price
    assert fleet.costs is not None
    assert fleet.costs.marginal_usd_per_node_hour(NOW)[p] == 0.0
    assert fleet.costs.marginal_usd_per_node_hour(NOW + 2.5 * H)[p] == float("inf")
    # 20 minutes before the block ends, its instances are already stopping: no pool
    late = SnapshotInputs([AWS, GCP], NOW + 2 * H + 40 * 60, None, (), (), BACKED, SPOT, None,
                          policy)  # fmt: skip
    assert all(pool.kind is not PoolKind.RESERVED for pool in build_snapshot(late).pools)


@pytest.mark.parametrize(
    ("extra", "on_block"),
    [
        ("duration: 2h\n", True),
        ("duration: 3h\n", False),  # the block's nodes stop in 2.5 h
        ("duration: 10h\ncheckpoint_interval: 30m\n", True),
        ("", False),
    ],
)
def test_the_fleet_decider_keeps_gangs_that_cannot_finish_off_the_block(
    extra: str, on_block: bool
) -> None:
    reserved = instance(AWS, pricing=PricingKind.RESERVED, contract="cb")
    out = decide([job(1, extra)], [reserved], FleetPolicy(contracts=[capacity_block(3)]))
    (d,) = out.jobs
    if on_block:
        assert isinstance(d, Place) and d.instances == (reserved.id,)
    else:
        # nothing else idle: it waits (new on-demand capacity is provisioned for it)
        assert not (isinstance(d, Place) and d.instances == (reserved.id,)), d


def test_a_gang_that_cannot_finish_says_why_when_nothing_else_can_take_it() -> None:
    reserved = instance(AWS, pricing=PricingKind.RESERVED, contract="cb")
    policy = FleetPolicy(contracts=[capacity_block(3)], default_max_instances=0)
    (d,) = decide([job(1, "duration: 3h\n")], [reserved], policy).jobs
    assert isinstance(d, Hold) and d.code is ReasonCode.BLOCK_ENDS_TOO_SOON, d
    assert "it ends in 2.5 h, the job needs 3 h to finish or checkpoint" in d.reason


def test_an_idle_instance_of_an_ended_block_is_released() -> None:
    reserved = instance(AWS, pricing=PricingKind.RESERVED, contract="cb")
    out = decide([], [reserved], FleetPolicy(contracts=[capacity_block(ends_in_h=0.25)]))
    assert out.capacity == [
        Release((reserved.id,), CapacityReason.CONTRACT_ENDED, "contract cb has ended", (1,))
    ]


def test_burn_weights_steer_the_decider_toward_a_lagging_commitment() -> None:
    """AWS lists $98 and GCP $88; with an AWS commitment 20% behind, AWS ranks at $78.40."""
    idle = [instance(AWS), instance(GCP)]
    plain = FleetPolicy()
    (d,) = decide([job(1, "")], idle, plain).jobs
    assert isinstance(d, Place) and d.placement.provider == "gcp"
    (d,) = decide([job(1, "")], idle, FleetPolicy(burn={"aws": 0.2})).jobs
    assert isinstance(d, Place) and d.placement.provider == "aws"
    assert d.placement.hourly_usd == 98.0  # what it costs is unchanged


def test_burn_weights_from_a_hand_computed_burn_down() -> None:
    """$1,000 committed over 10 days; 48 h at $1/h spent so far at a steady $1/h:
    projected 48 + 192 = $240, so 76% of the commitment goes unused."""
    t0 = NOW_DT - timedelta(days=2)
    c = Contract("edp", "aws", (), t0, t0 + timedelta(days=10), 0.0, committed_usd=1000.0)
    used = UsageInterval("aws", "r", "t", PricingKind.ON_DEMAND, None, "a", 1.0, t0, None)
    ledger = accrue([used], [c], NOW_DT)
    assert burn_weights([c], ledger) == {"aws": pytest.approx(0.76)}
    # on track (spending $4.17/h): no weight
    fast = UsageInterval("aws", "r", "t", PricingKind.ON_DEMAND, None, "a", 4.2, t0, None)
    assert burn_weights([c], accrue([fast], [c], NOW_DT)) == {}


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url, clock=FakeClock(NOW_DT - timedelta(days=2)))
    try:
        yield s
    finally:
        s.close()


def test_the_ledger_step_stores_the_weights_the_snapshot_reads(store: Store) -> None:
    t0 = NOW_DT - timedelta(days=2)
    c = Contract("edp", "aws", (), t0, t0 + timedelta(days=10), 0.0, committed_usd=1000.0)
    (row,) = store.request_instances(
        "r", 1, ("aws", "r", "ra", "t"), PricingKind.ON_DEMAND, 1.0, contract=None
    )
    assert store.transition_instance(row.id, S.REQUESTED, S.RUNNING, "up")
    step = LedgerAccrual(store, [c], every_s=0, clock=lambda: NOW_DT)
    assert step() is False  # bookkeeping never counts as loop activity
    assert store.get_setting(BURN_SETTING) == {"aws": pytest.approx(0.76)}
    policy = with_store_state(FleetPolicy(contracts=[c]), store, NOW_DT)
    assert policy.burn == {"aws": pytest.approx(0.76)}
    # without contracts the setting is not read
    assert with_store_state(FleetPolicy(), store, NOW_DT).burn == {}
