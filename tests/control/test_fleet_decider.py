"""The fleet decider as a pure function: offerings + free capacity + jobs holding
capacity -> pools and a fleet state; pending jobs -> Place / Hold / Reject / Preempt."""

from __future__ import annotations

from typing import Any

import pytest
from control_helpers import spec

from intercloud.control.decide import (
    Hold,
    PendingJob,
    Place,
    PlannerDecider,
    Preempt,
    Reject,
    RunningJob,
)
from intercloud.control.fleet_decider import FleetDecider, build_fleet, make_decider
from intercloud.model import Offering
from intercloud.providers.base import FreeCapacity
from intercloud.specs import load_spec_text

CPU = Offering("local", "local", "", "local-cpu", None, 0, vcpus=4, memory_gib=32,
               on_demand_price=0.0)  # fmt: skip
GPU = Offering("local", "gpu", "", "local-H100x8", "H100", 8, vcpus=16, memory_gib=64,
               on_demand_price=1.0)  # fmt: skip
CLOUD = Offering("cloud", "r1", "", "c-cpu", None, 0, vcpus=8, memory_gib=32,
                 on_demand_price=0.5)  # fmt: skip
CPU_KEY = ("local", "local", "", "local-cpu")
GPU_KEY = ("local", "gpu", "", "local-H100x8")
NOW = 1_700_000_000.0


def pending(job_id: int, nodes: int = 1, priority: int = 0, **kw: Any) -> PendingJob:
    w = load_spec_text(spec("true", nodes=nodes, **kw), source=f"job {job_id}").workload
    return PendingJob(job_id, priority, w, "default", NOW - 100 + job_id)


def gpu_pending(job_id: int, nodes: int = 1) -> PendingJob:
    text = f"kind: training\nname: g\nnum_nodes: {nodes}\nresources: {{accelerators: H100:8}}\n"
    w = load_spec_text(text + "run: 'true'\n", source="g").workload
    return PendingJob(job_id, 0, w)


def holding(job_id: int, ranks: int, cpus: float = 1.0, priority: int = 0, **kw: Any) -> RunningJob:
    placement = {"provider": "local", "region": "local", "zone": "", "instance_type": "local-cpu",
                 "ranks": ranks, "cpus_per_node": cpus, "accelerator_count": 0}  # fmt: skip
    return RunningJob(job_id, priority, "default", placement, NOW - 10, **kw)


def free(cpus: float, gpus: int = 0, memory: float = 32) -> dict[Any, FreeCapacity]:
    return {CPU_KEY: FreeCapacity(cpus, gpus, memory)}


def test_a_cpu_site_is_one_node_per_slot_and_held_capacity_is_allocated() -> None:
    fleet = build_fleet([CPU], free(2), [holding(7, 2)], NOW)
    (pool,) = fleet.state.pools
    assert (pool.max_nodes, pool.gpus_per_node, pool.vcpus_per_node) == (4, 0, 1.0)
    assert pool.accelerator is None and pool.memory_gib_per_node == 8
    assert fleet.held == {7: 0}
    assert fleet.state.allocations[7].nodes and len(fleet.state.allocations[7].nodes) == 2
    assert fleet.state.nodes_with_at_least(0, 1) == 2  # 2 free slots
    fleet.state.check_invariants()


def test_a_rank_of_several_cpus_takes_that_many_nodes() -> None:
    fleet = build_fleet([CPU], free(0), [holding(7, 2, cpus=2)], NOW)
    assert len(fleet.state.allocations[7].nodes) == 4
    assert fleet.state.nodes_with_at_least(0, 1) == 0


def test_capacity_the_provider_reports_taken_is_never_offered() -> None:
    # the store knows of 1 slot held; the provider says only 1 of the other 3 is free
    fleet = build_fleet([CPU], free(1), [holding(7, 1)], NOW)
    assert fleet.state.nodes_with_at_least(0, 1) == 1
    # and a held job the store knows of but the provider has not yet provisioned counts
    fleet = build_fleet([CPU], free(4), [holding(7, 3)], NOW)
    assert fleet.state.nodes_with_at_least(0, 1) == 1


def test_a_gpu_site_is_one_instance_and_unknown_capacity_is_sized_to_fit() -> None:
    fleet = build_fleet([GPU, CLOUD], {GPU_KEY: FreeCapacity(16, 8, 64)}, [], NOW, spare_nodes=5)
    gpu, cloud = fleet.state.pools
    assert (gpu.max_nodes, gpu.gpus_per_node, gpu.accelerator, gpu.vcpus_per_node) == (
        1, 8, "H100", 16)  # fmt: skip
    assert (cloud.max_nodes, cloud.gpus_per_node) == (5, 0)
    assert fleet.state.nodes_with_at_least(1, 1) == 5
    # the GPU site partly taken outside the store: nothing offered
    fleet = build_fleet([GPU], {GPU_KEY: FreeCapacity(16, 4, 64)}, [], NOW)
    assert fleet.state.nodes_with_at_least(0, 8) == 0


def test_places_a_gang_and_holds_the_next_with_the_scheduler_reason() -> None:
    out = FleetDecider().decide(
        [pending(1, nodes=3), pending(2, nodes=2)], [CPU], free(4), now_s=NOW
    )
    assert isinstance(out[0], Place) and out[0].job_id == 1
    assert out[0].demand.ranks == 3 and out[0].placement.instance_type == "local-cpu"
    assert isinstance(out[1], Hold) and out[1].job_id == 2
    assert out[1].reason == (
        "waiting for capacity: 2 × CPU; local/local local-cpu: needs 2 CPUs (free 1)"
    )


def test_hold_reason_speaks_of_ranks_and_cpus() -> None:
    out = FleetDecider().decide([pending(1, cpus=2)], [CPU], free(1), now_s=NOW)
    assert out == [
        Hold(1, "waiting for capacity: 1 × 2 CPUs; local/local local-cpu: needs 2 CPUs (free 1)")
    ]


def test_priority_order_and_fifo_policy() -> None:
    jobs = [pending(1), pending(2, priority=5), pending(3)]
    out = FleetDecider().decide(jobs, [CPU], free(1), now_s=NOW)
    assert [(type(d).__name__, d.job_id) for d in out] == [
        ("Place", 2), ("Hold", 1), ("Hold", 3)]  # fmt: skip
    out = FleetDecider("fifo").decide(jobs, [CPU], free(1), now_s=NOW)
    assert isinstance(out[0], Place) and out[0].job_id == 1


def test_rejections_keep_the_planner_words_and_too_big_gangs_are_rejected() -> None:
    gpu = load_spec_text(
        "kind: training\nname: g\nresources: {accelerators: H100:8}\nrun: 'true'\n", source="g"
    ).workload
    out = FleetDecider().decide([PendingJob(1, 0, gpu), pending(2, nodes=5)], [CPU], free(4))
    assert out[0] == Reject(
        1, "no enabled provider can run it (local: offers no H100:8 (has: CPU only))"
    )
    assert out[1] == Reject(
        2,
        "no enabled provider can run it"
        " (local/local local-cpu: the gang needs 5 CPUs, it has 4 in all)",
    )
    out = FleetDecider().decide(
        [gpu_pending(3, nodes=2)], [GPU], {GPU_KEY: FreeCapacity(16, 8, 64)}
    )
    assert isinstance(out[0], Reject) and "cannot run a gang of 2 nodes" in out[0].reason
    out = FleetDecider().decide([gpu_pending(3)], [GPU], {GPU_KEY: FreeCapacity(16, 8, 64)})
    assert isinstance(out[0], Place) and out[0].demand.gpus == 8


def test_memory_is_checked_against_the_providers_free_capacity() -> None:
    out = FleetDecider().decide([pending(1, memory="20+")], [CPU], free(4, memory=10))
    assert out == [Hold(1, "waiting for capacity on local/local local-cpu: needs 20 GiB (free 10)")]


def test_preempts_lower_priority_running_work() -> None:
    running = [holding(7, 4, priority=0, preemptible=True)]
    out = FleetDecider().decide(
        [pending(9, nodes=2, priority=10)], [CPU], free(0), running=running, now_s=NOW
    )
    assert out[0] == Preempt(
        7, 9, "preempted for job 9 (priority 10); requeued from its last checkpoint"
    )
    assert isinstance(out[1], Place) and out[1].job_id == 9
    # not preemptible (placing, cancelling) or preemption off: held
    running = [holding(7, 4, priority=0, preemptible=False)]
    out = FleetDecider().decide(
        [pending(9, nodes=2, priority=10)], [CPU], free(0), running=running, now_s=NOW
    )
    assert [type(d) for d in out] == [Hold]
    running = [holding(7, 4, priority=0, preemptible=True)]
    off = FleetDecider(preemption=False)
    out = off.decide([pending(9, nodes=2, priority=10)], [CPU], free(0), running=running, now_s=NOW)
    assert [type(d) for d in out] == [Hold]


class _Settings:
    def __init__(self, **values: Any) -> None:
        self.values = {k.replace("_", ".", 1): v for k, v in values.items()}

    def get_setting(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def test_make_decider_by_name_env_and_store_setting() -> None:
    d = make_decider(environ={})
    assert isinstance(d, FleetDecider) and d.queue_policy == "priority" and d.preemption
    assert isinstance(make_decider(environ={"INTERCLOUD_DECIDER": "planner"}), PlannerDecider)
    assert isinstance(make_decider("planner", environ={}), PlannerDecider)
    s = _Settings(scheduler_queue_policy="fair_share", scheduler_preemption=False)
    d = make_decider(store=s, environ={})
    assert isinstance(d, FleetDecider) and d.queue_policy == "fair_share" and not d.preemption
    env = {"INTERCLOUD_QUEUE_POLICY": "fifo", "INTERCLOUD_PREEMPTION": "1"}
    d = make_decider(store=s, environ=env)
    assert isinstance(d, FleetDecider) and d.queue_policy == "fifo" and d.preemption
    with pytest.raises(ValueError, match="unknown decider"):
        make_decider("magic", environ={})
    with pytest.raises(ValueError, match="INTERCLOUD_QUEUE_POLICY='nope'"):
        make_decider(environ={"INTERCLOUD_QUEUE_POLICY": "nope"})
    with pytest.raises(ValueError, match="INTERCLOUD_DECIDER='nope'"):
        make_decider(environ={"INTERCLOUD_DECIDER": "nope"})
    with pytest.raises(ValueError, match="INTERCLOUD_PREEMPTION='maybe'"):
        make_decider(environ={"INTERCLOUD_PREEMPTION": "maybe"})


def _alternatives_job(job_id: int, key: str, items: str) -> PendingJob:
    text = f"kind: training\nname: alt\nresources:\n  {key}:\n{items}run: 'true'\n"
    return PendingJob(job_id, 0, load_spec_text(text, source="alt").workload, "default", NOW)


def test_an_ordered_job_runs_with_the_sizes_of_the_alternative_placed() -> None:
    # ordered[0] asks more CPUs than any offering has; ordered[1] fits the local site.
    items = (
        "    - {instance_type: local-cpu, cpus: 64+, memory: 1+}\n"
        "    - {instance_type: local-cpu, cpus: 2+, memory: 4+}\n"
    )
    out = FleetDecider().decide([_alternatives_job(1, "ordered", items)], [CPU], free(4), now_s=NOW)
    assert isinstance(out[0], Place)
    assert out[0].placement.option == 1
    assert (out[0].demand.cpus_per_node, out[0].demand.memory_gib_per_node) == (2, 4)


def test_alternatives_of_another_shape_never_join_the_gang() -> None:
    # any_of: the local site (free) or the cloud with 4 CPUs a rank. The local site is
    # cheaper, so the gang is 1 CPU a rank; when the site is full the job waits rather
    # than become a 4-CPU gang on pools sized for the other shape.
    items = "    - {instance_type: local-cpu, cpus: 1+}\n    - {instance_type: c-cpu, cpus: 4+}\n"
    job = _alternatives_job(1, "any_of", items)
    out = FleetDecider().decide([job], [CPU, CLOUD], free(0), now_s=NOW)
    assert isinstance(out[0], Hold), out
    assert "1 × CPU" in out[0].reason
