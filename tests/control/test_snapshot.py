"""The fleet snapshot builder: offerings + instance rows + contracts + policy -> pools."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

import pytest
from snapshot_helpers import (
    AWS,
    AWS_KEY,
    BACKED,
    GCP,
    NOW,
    NOW_DT,
    SPOT,
    block,
    instance,
    running_on,
)

from intercloud.control.decide import Demand, RunningJob, TenantLimits, offering_key
from intercloud.control.snapshot import (
    Fleet,
    FleetPolicy,
    PoolKind,
    SnapshotInputs,
    TaggedCaps,
    build_snapshot,
)
from intercloud.model import Contract, Offering, PricingKind, ReservedBlock
from intercloud.providers.base import FreeCapacity
from intercloud.providers.contract import InstanceState as S
from intercloud.store.records import InstanceRecord


def snap(
    *,
    instances: Sequence[InstanceRecord] = (),
    running: Sequence[RunningJob] = (),
    policy: FleetPolicy | None = None,
    spot: frozenset[str] = SPOT,
    tenants: Sequence[TenantLimits] | None = None,
) -> Fleet:
    inputs = SnapshotInputs([AWS, GCP], NOW, None, running, instances, BACKED, spot, tenants,
                            policy or FleetPolicy())  # fmt: skip
    fleet = build_snapshot(inputs)
    fleet.state.check_invariants()
    return fleet


def pool_of(fleet: Fleet, provider: str, pricing: PricingKind = PricingKind.ON_DEMAND) -> int:
    return next(
        p
        for p, pool in enumerate(fleet.pools)
        if pool.offering.provider == provider and pool.pricing is pricing
    )


def usable(fleet: Fleet, p: int) -> int:
    return fleet.state.nodes_with_at_least(p, fleet.state.pool_slots[p])


def contract(nodes: int = 2, start_h: float = -1, end_h: float = 24) -> Contract:
    return Contract("c1", "aws", (ReservedBlock(AWS.region, AWS.zone, AWS.instance_type, nodes),),
                    NOW_DT + timedelta(hours=start_h), NOW_DT + timedelta(hours=end_h),
                    usd_per_node_hour=60.0)  # fmt: skip


def test_elastic_pools_are_sized_from_instance_rows() -> None:
    rows = [instance(idle_for_s=30), instance(idle_for_s=900), instance(state=S.REQUESTED),
            instance(state=S.ALLOCATED), instance(state=S.DRAINING),
            instance(state=S.TERMINATED), instance(state=S.FAILED)]  # fmt: skip
    fleet = snap(instances=rows, policy=FleetPolicy(max_instances={AWS_KEY: 6}))
    p = pool_of(fleet, "aws")
    assert fleet.pools[p].kind is PoolKind.INSTANCES and fleet.pools[p].backed
    spec = fleet.state.pools[p]
    assert spec.max_nodes == 6 and spec.pricing is PricingKind.ON_DEMAND
    assert int(fleet.state.pool_present_nodes[p]) == 5  # 2 running, 2 coming, 1 draining
    assert usable(fleet, p) == 2  # only the running ones are ready
    assert fleet.state.absent_nodes(p) == 1  # room to grow to the configured max
    # the rows name their instances; the idle ones keep their idle time
    assert sorted(i.id for i in fleet.node_instance.values()) == sorted(r.id for r in rows[:5])
    idle = fleet.state.idle_nodes(p, NOW, 600)
    assert [fleet.node_instance[n].id for n in idle] == [rows[1].id]
    # a pool of the default max (8) when nothing is configured, and GCP has no rows
    g = pool_of(fleet, "gcp")
    assert fleet.state.pools[g].max_nodes == 8 and usable(fleet, g) == 0
    assert fleet.state.absent_nodes(g) == 8


def test_more_rows_than_the_max_keep_their_rows_and_a_max_of_zero_never_grows() -> None:
    rows = [instance(), instance(), instance()]
    fleet = snap(instances=rows, policy=FleetPolicy(max_instances={AWS_KEY: 1}))
    p = pool_of(fleet, "aws")
    assert fleet.state.pools[p].max_nodes == 3 and usable(fleet, p) == 3
    assert fleet.state.absent_nodes(p) == 0
    fleet = snap(policy=FleetPolicy(max_instances={AWS_KEY: 0}))
    p = pool_of(fleet, "aws")
    assert fleet.state.absent_nodes(p) == 0 and usable(fleet, p) == 0
    assert "max 0" in str(fleet.pools[p].frozen)


def test_bound_instances_carry_their_jobs_allocation_by_rank() -> None:
    rows = [instance(job=7, rank=1), instance(), instance(job=7, rank=0)]
    fleet = snap(instances=rows, running=[running_on(7, AWS, 2)])
    p = pool_of(fleet, "aws")
    alloc = fleet.state.allocations[7]
    assert alloc.pool == p and fleet.held == {7: p}
    assert [fleet.node_instance[n].id for n in alloc.nodes] == [rows[2].id, rows[0].id]
    assert usable(fleet, p) == 1  # the idle one
    assert fleet.held_requests[7].gpus == 16


def test_spot_pools_need_a_spot_price_and_a_provider_that_declares_spot() -> None:
    fleet = snap()
    spot = [pool for pool in fleet.pools if pool.pricing is PricingKind.SPOT]
    assert [(p.offering.provider, p.usd_per_node_hour) for p in spot] == [("aws", 40.0)]
    assert not any(p.pricing is PricingKind.SPOT for p in snap(spot=frozenset()).pools)
    # a spot instance row lands in the spot pool
    fleet = snap(instances=[instance(pricing=PricingKind.SPOT)])
    assert usable(fleet, pool_of(fleet, "aws", PricingKind.SPOT)) == 1
    assert usable(fleet, pool_of(fleet, "aws")) == 0


def test_a_cooling_down_offering_cannot_grow_but_keeps_its_ready_nodes() -> None:
    fleet = snap(instances=[instance()], policy=FleetPolicy(blocks=[block(AWS_KEY)]))
    p = pool_of(fleet, "aws")
    assert fleet.state.absent_nodes(p) == 0  # cannot grow
    assert usable(fleet, p) == 1  # the running instance still takes work
    assert "cooling down until 2026-01-01 12:01:00 UTC" in str(fleet.pools[p].frozen)
    # the block is per pricing: the spot pool of the same offering still grows
    assert fleet.state.absent_nodes(pool_of(fleet, "aws", PricingKind.SPOT)) == 8
    # an expired block changes nothing
    fleet = snap(policy=FleetPolicy(blocks=[block(AWS_KEY, for_s=-1)]))
    assert fleet.state.absent_nodes(pool_of(fleet, "aws")) == 8


def test_a_down_providers_pools_take_nothing_new() -> None:
    rows = [instance(job=7, rank=0), instance()]
    policy = FleetPolicy(down={"aws": NOW_DT - timedelta(minutes=5)})
    fleet = snap(instances=rows, running=[running_on(7, AWS, 1)], policy=policy)
    for pricing in (PricingKind.ON_DEMAND, PricingKind.SPOT):
        p = pool_of(fleet, "aws", pricing)
        assert fleet.state.absent_nodes(p) == 0 and usable(fleet, p) == 0
        assert fleet.pools[p].down_since == NOW - 300
        assert "provider aws is down since 2026-01-01 11:55:00 UTC" in str(fleet.pools[p].frozen)
    assert 7 in fleet.state.allocations  # its job stays until failover requeues it
    assert fleet.state.absent_nodes(pool_of(fleet, "gcp")) == 8


def test_reserved_pools_come_from_contracts_at_zero_marginal_cost() -> None:
    rows = [instance(pricing=PricingKind.RESERVED, contract="c1")]
    fleet = snap(instances=rows, policy=FleetPolicy(contracts=[contract(nodes=3)]))
    p = pool_of(fleet, "aws", PricingKind.RESERVED)
    pool, spec = fleet.pools[p], fleet.state.pools[p]
    assert pool.kind is PoolKind.RESERVED and pool.contract == "c1" and spec.contract == "c1"
    assert spec.max_nodes == 3 and spec.usd_per_node_hour == 60.0
    assert fleet.costs is not None
    assert fleet.costs.marginal_usd_per_node_hour(NOW)[p] == 0.0
    assert usable(fleet, p) == 1  # the running reserved instance; 2 still to launch
    assert fleet.unbacked_reserved == {p: 2}
    # before its window: the pool exists but is unusable, nothing launched
    fleet = snap(policy=FleetPolicy(contracts=[contract(start_h=1)]))
    p = pool_of(fleet, "aws", PricingKind.RESERVED)
    assert fleet.costs is not None
    assert fleet.costs.marginal_usd_per_node_hour(NOW)[p] == float("inf")
    assert fleet.unbacked_reserved == {}
    # after it: no pool at all
    fleet = snap(policy=FleetPolicy(contracts=[contract(start_h=-48, end_h=-1)]))
    assert not any(pool.pricing is PricingKind.RESERVED for pool in fleet.pools)


def test_caps_count_every_offering_of_a_provider_together() -> None:
    caps = TaggedCaps({"aws": 0.5})
    assert caps.share("aws#3") == 0.5 and caps.share("gcp#1") == 1.0
    by = {"aws#0": 8.0, "aws#2": 8.0, "gcp#1": 16.0}
    assert caps.allows("aws#0", 0, by, 32.0)
    assert not caps.allows("aws#2", 8, by, 32.0)  # 24 of 40 > 50%
    assert "cap: aws would run 60.0%" in caps.reason("aws#2", 8, by, 32.0)
    assert caps.headroom("aws#0", by, 32.0) == pytest.approx(0.0)
    fleet = snap(policy=FleetPolicy(caps={"aws": 0.4}, caps_min_fleet_gpus=8))
    assert isinstance(fleet.caps, TaggedCaps) and fleet.caps.min_fleet_gpus == 8


def test_tenants_get_a_ledger_with_the_running_jobs_replayed() -> None:
    rows = [instance(job=7, rank=0)]
    tenants = [TenantLimits("research", guarantees={"H100": 8}, monthly_budget_usd=100.0)]
    fleet = snap(instances=rows, running=[running_on(7, AWS, 1, tenant="research")],
                 tenants=tenants)  # fmt: skip
    assert fleet.ledger is not None
    assert [(s.job_id, s.gpu_type, s.gpus) for s in fleet.replay] == [(7, "H100", 8)]
    assert snap().ledger is None


def test_with_provisioning_on_a_local_site_never_grows_past_what_is_free() -> None:
    from intercloud.model import Offering
    from intercloud.providers.base import FreeCapacity

    cpu = Offering("local", "local", "", "local-cpu", None, 0, vcpus=4, memory_gib=32,
                   on_demand_price=0.0)  # fmt: skip
    free = {("local", "local", "", "local-cpu"): FreeCapacity(1, 0, 32)}
    fleet = build_snapshot(SnapshotInputs([cpu, AWS], NOW, free, instance_backed=BACKED))
    fleet.state.check_invariants()
    assert fleet.state.absent_nodes(0) == 0 and usable(fleet, 0) == 1
    assert fleet.state.absent_nodes(pool_of(fleet, "aws")) == 8
    # without instance-backed providers the site's pool is as it always was
    fleet = build_snapshot(SnapshotInputs([cpu], NOW, free))
    assert fleet.state.absent_nodes(0) == 3 and usable(fleet, 0) == 1


def test_instances_a_placement_names_are_held_before_the_bridge_binds_them() -> None:
    rows = [instance(), instance(), instance()]
    job = running_on(7, AWS, 2)
    job = RunningJob(7, 0, "default", {**job.placement, "instances": [rows[2].id, rows[0].id]},
                     job.since_s)  # fmt: skip
    fleet = snap(instances=rows, running=[job])
    alloc = fleet.state.allocations[7]
    assert [fleet.node_instance[n].id for n in alloc.nodes] == [rows[2].id, rows[0].id]
    assert usable(fleet, pool_of(fleet, "aws")) == 1
    # ids that are gone or bound to another job are not taken
    other = instance(job=9, rank=0)
    job = RunningJob(7, 0, "default", {**job.placement, "instances": [other.id, 12345]}, 0.0)
    fleet = snap(instances=[other], running=[job])
    assert 7 not in fleet.state.allocations


def test_a_clusters_nodes_are_that_many_machines_never_one_big_one() -> None:
    """A known-capacity offering of several identical machines (a Ray or Slurm
    cluster's nodes of one shape): a pool of that many nodes of one machine's shape,
    with as many usable as its provider reports wholly free."""
    gpu = Offering("ray", "lab", "", "ray-8cpu-4xA100-64gib", "A100", 4, vcpus=8,
                   memory_gib=64, on_demand_price=0.0, machines=3)  # fmt: skip
    cpu = Offering("ray", "lab", "", "ray-2cpu-2gib", None, 0, vcpus=2, memory_gib=2,
                   on_demand_price=0.0, machines=2)  # fmt: skip
    free = {
        offering_key(gpu): FreeCapacity(20.0, 10, 150.0, machines=2),
        offering_key(cpu): FreeCapacity(3.0, 0, 3.0, machines=1),
    }
    inputs = SnapshotInputs([gpu, cpu], NOW, free, (), (), frozenset(), frozenset(), None,
                            FleetPolicy())  # fmt: skip
    fleet = build_snapshot(inputs)
    fleet.state.check_invariants()
    for o, machines, usable_now in ((gpu, 3, 2), (cpu, 2, 1)):
        p = next(i for i, pool in enumerate(fleet.pools) if pool.offering == o)
        assert fleet.pools[p].kind is PoolKind.ONE_INSTANCE
        spec = fleet.state.pools[p]
        assert (spec.max_nodes, spec.gpus_per_node, spec.vcpus_per_node) == (
            machines,
            o.accelerator_count,
            o.vcpus,
        )
        assert usable(fleet, p) == usable_now
        pool = fleet.pools[p]
        fits = Demand(ranks=machines, cpus_per_node=o.vcpus, gpus_per_node=o.accelerator_count,
                      memory_gib_per_node=o.memory_gib)  # fmt: skip
        assert pool.too_big(fits) is None  # a gang of one rank per machine
        assert "cannot run a gang" in str(pool.too_big(replace(fits, ranks=machines + 1)))
        assert "a node needs" in str(pool.too_big(replace(fits, cpus_per_node=o.vcpus + 1)))
