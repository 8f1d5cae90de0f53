"""The fleet decider with provisioning on: Provision / Release / Place on instances, and
each of tenants, budgets, caps, pool costs, reserved pools and cool-downs binding."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from snapshot_helpers import (
    AWS,
    AWS_KEY,
    BACKED,
    GCP,
    GCP_KEY,
    NOW,
    NOW_DT,
    SPOT,
    block,
    gpu_job,
    instance,
    running_on,
)

from intercloud.control.decide import (
    CapacityReason,
    Hold,
    PendingJob,
    Place,
    Provision,
    Reject,
    Release,
    RunningJob,
    TenantLimits,
)
from intercloud.control.failover import FailoverReason
from intercloud.control.fleet_decider import FleetDecider, FleetDecisions
from intercloud.control.snapshot import FleetPolicy, SnapshotInputs
from intercloud.model import Contract, Offering, PricingKind, ReservedBlock
from intercloud.providers.contract import InstanceState as S
from intercloud.scheduler.reasons import ReasonCode
from intercloud.store.records import InstanceRecord


def decide(
    pending: Sequence[PendingJob],
    *,
    instances: Sequence[InstanceRecord] = (),
    running: Sequence[RunningJob] = (),
    policy: FleetPolicy | None = None,
    offerings: Sequence[Offering] = (AWS, GCP),
    tenants: Sequence[TenantLimits] | None = None,
    now: float = NOW,
) -> FleetDecisions:
    inputs = SnapshotInputs(list(offerings), now, None, running, instances, BACKED, SPOT,
                            tenants, policy or FleetPolicy())  # fmt: skip
    return FleetDecider().decide_fleet(pending, inputs)


def only(out: FleetDecisions) -> Hold | Place | Reject:
    (d,) = out.jobs
    assert isinstance(d, Hold | Place | Reject)
    return d


def test_a_gang_on_an_empty_fleet_provisions_the_cheapest_pool_and_waits() -> None:
    out = decide([gpu_job(1, nodes=2)])
    assert out.capacity == [
        Provision(
            GCP_KEY,
            PricingKind.ON_DEMAND,
            2,
            CapacityReason.GANG_WAITING,
            "new nodes for job 1",
            None,
            88.0,
            1,
        )
    ]
    assert only(out) == Hold(1, "waiting for 2 new nodes of gcp/us-central1/us-central1-a "
                                "a3-highgpu-8g")  # fmt: skip


def test_instances_launched_for_a_gang_are_waited_for_not_launched_again() -> None:
    coming = [instance(GCP, S.REQUESTED, extra={"for_job": 1}) for _ in range(2)]
    out = decide([gpu_job(1, nodes=2)], instances=coming)
    assert out.capacity == []
    assert only(out) == Hold(1, "waiting for 2 new nodes of gcp/us-central1/us-central1-a "
                                "a3-highgpu-8g")  # fmt: skip


def test_a_gang_is_placed_on_idle_running_instances_and_names_them() -> None:
    ready = [instance(GCP), instance(GCP), instance(GCP)]
    out = decide([gpu_job(1, nodes=2)], instances=ready)
    d = only(out)
    assert isinstance(d, Place) and out.capacity == []
    assert d.placement.provider == "gcp" and d.demand.ranks == 2
    assert len(d.instances) == 2 and set(d.instances) <= {i.id for i in ready}
    # an idle instance is reused even where a new one elsewhere would cost less
    out = decide([gpu_job(2)], instances=[instance(AWS)])
    d = only(out)
    assert isinstance(d, Place) and d.placement.provider == "aws" and out.capacity == []


def test_idle_instances_are_released_after_the_idle_time_only() -> None:
    old, fresh = instance(AWS, idle_for_s=700, version=4), instance(AWS, idle_for_s=100)
    busy = instance(AWS, job=7, rank=0)
    out = decide([], instances=[old, fresh, busy], running=[running_on(7, AWS, 1)],
                 policy=FleetPolicy(idle_release_s=600))  # fmt: skip
    assert out.capacity == [Release((old.id,), CapacityReason.IDLE, "idle for 600 s", (4,))]
    out = decide([], instances=[old, fresh], policy=FleetPolicy(idle_release_s=3600))
    assert out.capacity == []


def test_a_cooling_down_offering_sends_the_gang_to_the_next_one() -> None:
    policy = FleetPolicy(blocks=[block(GCP_KEY)])
    out = decide([gpu_job(1)], policy=policy)
    (p,) = out.capacity
    assert isinstance(p, Provision) and p.offering == AWS_KEY and p.count == 1
    # with every offering cooling down the gang holds and says why
    policy = FleetPolicy(blocks=[block(GCP_KEY), block(AWS_KEY)])
    d = only(decide([gpu_job(1)], offerings=[AWS, GCP], policy=policy))
    assert isinstance(d, Hold) and "cooling down until" in d.reason


def test_spot_is_provisioned_only_for_gangs_that_allow_it() -> None:
    out = decide([gpu_job(1, extra=", spot: allowed")])
    (p,) = out.capacity
    assert isinstance(p, Provision) and (p.offering, p.pricing) == (AWS_KEY, PricingKind.SPOT)
    assert p.usd_per_hour == 40.0
    d = only(out)
    assert isinstance(d, Hold) and d.reason.endswith("p5.48xlarge (spot)")
    # placed on a running spot instance, the placement says spot and its price
    spot = instance(AWS, pricing=PricingKind.SPOT)
    d = only(decide([gpu_job(2, extra=", spot: allowed")], instances=[spot]))
    assert isinstance(d, Place) and d.instances == (spot.id,)
    assert d.placement.pricing is PricingKind.SPOT and d.placement.hourly_usd == 40.0


def test_a_reserved_pool_is_preferred_and_kept_launched() -> None:
    c = Contract("c1", "aws", (ReservedBlock(AWS.region, AWS.zone, AWS.instance_type, 3),),
                 NOW_DT - timedelta(hours=1), NOW_DT + timedelta(days=30), 60.0)  # fmt: skip
    reserved = instance(AWS, pricing=PricingKind.RESERVED, contract="c1")
    cheap = instance(GCP)  # an idle on-demand instance at list price
    out = decide([gpu_job(1)], instances=[reserved, cheap], policy=FleetPolicy(contracts=[c]))
    d = only(out)
    assert isinstance(d, Place) and d.instances == (reserved.id,)
    assert d.placement.pricing is PricingKind.RESERVED and d.placement.hourly_usd == 60.0
    # the contract's other 2 nodes are launched: they are paid for anyway
    assert out.capacity == [
        Provision(
            AWS_KEY,
            PricingKind.RESERVED,
            2,
            CapacityReason.RESERVED_WARM,
            "reserved nodes of contract c1",
            "c1",
            60.0,
        )
    ]
    # once the window has closed, its idle instances are released
    out = decide([], instances=[reserved], policy=FleetPolicy(contracts=[c]),
                 now=NOW + 31 * 86400)  # fmt: skip
    assert out.capacity == [
        Release((reserved.id,), CapacityReason.CONTRACT_ENDED, "contract c1 has ended", (1,))
    ]


def test_caps_send_the_gang_to_another_provider() -> None:
    # GCP is cheaper; with GCP capped at 50% of the fleet's GPUs and 8 GPUs running on
    # GCP, the next 8 go to AWS
    running = [running_on(7, GCP, 1)]
    rows = [instance(GCP, job=7, rank=0)]
    out = decide([gpu_job(1)], instances=rows, running=running)
    assert [p.offering for p in out.capacity if isinstance(p, Provision)] == [GCP_KEY]
    out = decide([gpu_job(1)], instances=rows, running=running,
                 policy=FleetPolicy(caps={"gcp": 0.5}))  # fmt: skip
    assert [p.offering for p in out.capacity if isinstance(p, Provision)] == [AWS_KEY]


def test_a_tenants_quota_binds_through_the_snapshot() -> None:
    rows = [instance(AWS, job=7, rank=0), instance(GCP)]
    running = [running_on(7, AWS, 1, tenant="research")]
    tenants = [TenantLimits("research", quotas={"H100": 8})]
    d = only(decide([gpu_job(1, tenant="research")], instances=rows, running=running,
                    tenants=tenants))  # fmt: skip
    assert isinstance(d, Hold) and d.reason.startswith("over quota: research runs 8 of its 8")
    # another tenant takes the idle instance
    d = only(decide([gpu_job(2, tenant="default")], instances=rows, running=running,
                    tenants=tenants))  # fmt: skip
    assert isinstance(d, Place)


def test_a_tenants_budget_binds_through_the_snapshot() -> None:
    tenants = [TenantLimits("research", monthly_budget_usd=50.0, spent_usd=49.0)]
    out = decide([gpu_job(1, tenant="research")], instances=[instance(GCP)], tenants=tenants)
    d = only(out)
    assert isinstance(d, Hold) and "over budget" in d.reason and out.capacity == []
    tenants = [TenantLimits("research", monthly_budget_usd=5000.0)]
    d = only(decide([gpu_job(1, tenant="research")], instances=[instance(GCP)], tenants=tenants))
    assert isinstance(d, Place)


def test_a_down_provider_takes_nothing_new_and_pinned_gangs_say_why() -> None:
    policy = FleetPolicy(down={"gcp": NOW_DT - timedelta(minutes=10)})
    out = decide([gpu_job(1)], instances=[instance(GCP)], policy=policy)
    (p,) = out.capacity
    assert isinstance(p, Provision) and p.offering == AWS_KEY  # not the idle GCP node
    d = only(decide([gpu_job(1)], offerings=[GCP], policy=policy))
    assert d == Hold(
        1, "provider gcp is down since 2026-01-01 11:50:00 UTC", ReasonCode.PROVIDER_DOWN
    )
    # its running jobs are moved, from their checkpoint, as preemptions
    rows = [instance(GCP, job=7, rank=0), instance(AWS, job=8, rank=0)]
    running = [running_on(7, GCP, 1), running_on(8, AWS, 1)]
    out = decide([], instances=rows, running=running, policy=policy)
    assert [(r.job_id, r.provider, r.code) for r in out.requeue] == [
        (7, "gcp", FailoverReason.PROVIDER_DOWN)
    ]


def test_a_gang_larger_than_the_max_is_rejected() -> None:
    policy = FleetPolicy(max_instances={AWS_KEY: 2, GCP_KEY: 2})
    d = only(decide([gpu_job(1, nodes=3)], policy=policy))
    assert isinstance(d, Reject)


def test_a_refused_launch_fails_over_to_the_next_offering() -> None:
    # cycle 1: the cheapest offering (GCP) is asked for the gang's node
    out = decide([gpu_job(1)])
    assert [p.offering for p in out.capacity if isinstance(p, Provision)] == [GCP_KEY]
    # GCP refused capacity: its row failed and the offering is cooling down; cycle 2
    # asks AWS, once, and the gang waits for it
    failed = instance(GCP, S.FAILED, extra={"for_job": 1})
    out = decide([gpu_job(1)], instances=[failed], policy=FleetPolicy(blocks=[block(GCP_KEY)]))
    assert [p.offering for p in out.capacity if isinstance(p, Provision)] == [AWS_KEY]
    coming = instance(AWS, S.REQUESTED, extra={"for_job": 1})
    out = decide([gpu_job(1)], instances=[failed, coming],
                 policy=FleetPolicy(blocks=[block(GCP_KEY)]))  # fmt: skip
    assert out.capacity == []  # no retry storm
    assert only(out) == Hold(1, "waiting for 1 new node of aws/us-east-1/us-east-1a p5.48xlarge")


def test_a_pool_growing_for_a_gang_keeps_its_idle_nodes() -> None:
    idle = instance(AWS, idle_for_s=7200)
    policy = FleetPolicy(idle_release_s=600, blocks=[block(GCP_KEY)])
    out = decide([gpu_job(1, nodes=2)], instances=[idle], policy=policy)
    assert out.capacity == [
        Provision(
            AWS_KEY,
            PricingKind.ON_DEMAND,
            1,
            CapacityReason.GANG_WAITING,
            "new nodes for job 1",
            None,
            98.0,
            1,
        )
    ]
    coming = instance(AWS, S.REQUESTED, extra={"for_job": 1})
    out = decide([gpu_job(1, nodes=2)], instances=[idle, coming], policy=policy)
    assert out.capacity == []
    # with nothing waiting, the idle one goes
    out = decide([], instances=[idle], policy=policy)
    assert [type(d) for d in out.capacity] == [Release]


def test_a_down_job_level_provider_holds_its_pinned_gangs_too() -> None:
    # a provider without instance rows (sized to fit) that is down
    inputs = SnapshotInputs([GCP], NOW, policy=FleetPolicy(down={"gcp": NOW_DT}))
    (d,) = FleetDecider().decide_fleet([gpu_job(1)], inputs).jobs
    assert d == Hold(
        1, "provider gcp is down since 2026-01-01 12:00:00 UTC", ReasonCode.PROVIDER_DOWN
    )


def test_a_cooling_instance_pool_does_not_hide_a_sliced_site_of_another_shape() -> None:
    """A 2-CPU rank is one instance on AWS but two CPU slots on a local site: the gang's
    shape comes from the first candidate that can still grow, so once the cheaper AWS
    offering cools down the job goes to the site (it used to wait for AWS forever)."""
    from intercloud.providers.base import FreeCapacity
    from intercloud.specs import load_spec_text

    aws = Offering("aws", "us-east-1", "us-east-1a", "c7g.xlarge", None, 0, vcpus=4,
                   memory_gib=8, on_demand_price=0.145)  # fmt: skip
    site = Offering("gcp", "us-central1", "us-central1-a", "local-cpu", None, 0, vcpus=8,
                    memory_gib=32, on_demand_price=0.15)  # fmt: skip
    aws_key = ("aws", "us-east-1", "us-east-1a", "c7g.xlarge")
    site_key = ("gcp", "us-central1", "us-central1-a", "local-cpu")
    text = "kind: training\nname: c\nresources: {cpus: '2+'}\nrun: 'true'\n"
    job = PendingJob(1, 0, load_spec_text(text).workload, "default", NOW - 10)

    def one(policy: FleetPolicy) -> FleetDecisions:
        inputs = SnapshotInputs([aws, site], NOW, {site_key: FreeCapacity(8, 0, 32)}, (), (),
                                frozenset({"aws"}), frozenset(), None, policy)  # fmt: skip
        return FleetDecider().decide_fleet([job], inputs)

    first = one(FleetPolicy())
    assert [p.offering for p in first.capacity if isinstance(p, Provision)] == [aws_key]
    d = only(one(FleetPolicy(blocks=[block(aws_key)])))
    assert isinstance(d, Place) and d.placement.provider == "gcp", d
