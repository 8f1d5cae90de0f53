"""The decision step, pure: queue order, placement, holds on free capacity, rejects."""

from __future__ import annotations

from intercloud.control.decide import (
    Hold,
    PendingJob,
    Place,
    PlannerDecider,
    Reject,
    queue_order,
)
from intercloud.model import Offering, ResourceRequest, Service, TrainingJob
from intercloud.providers.base import FreeCapacity

CPU = Offering("local", "local", "", "local-cpu", None, 0, vcpus=8, memory_gib=32,
               on_demand_price=1.0)  # fmt: skip
CPU2 = Offering("other", "r1", "", "local-cpu", None, 0, vcpus=8, memory_gib=32,
                on_demand_price=2.0)  # fmt: skip


def job(job_id: int, nodes: int = 1, priority: int = 0, cpus: float | None = None) -> PendingJob:
    res = ResourceRequest(num_nodes=nodes, instance_type="local-cpu", cpus=cpus)
    return PendingJob(job_id, priority, TrainingJob(f"j{job_id}", res, run="true"))


def test_queue_order_is_priority_then_fifo() -> None:
    pending = [job(3), job(1), job(2, priority=5), job(4, priority=5)]
    assert [j.job_id for j in queue_order(pending)] == [2, 4, 1, 3]


def test_places_cheapest_and_falls_back_to_an_alternative_when_full() -> None:
    d = PlannerDecider()
    free = {
        ("local", "local", "", "local-cpu"): FreeCapacity(cpus=3, gpus=0, memory_gib=32),
        ("other", "r1", "", "local-cpu"): FreeCapacity(cpus=2, gpus=0, memory_gib=32),
    }
    out = d.decide([job(1, nodes=2), job(2, nodes=2), job(3, nodes=2)], [CPU, CPU2], free)
    assert isinstance(out[0], Place) and out[0].placement.provider == "local"
    assert out[0].demand.ranks == 2 and out[0].demand.cpus == 2
    assert isinstance(out[1], Place) and out[1].placement.provider == "other"  # local full
    assert isinstance(out[2], Hold)
    assert out[2].reason.startswith("waiting for capacity on local/local local-cpu")
    assert "needs 2 CPUs (free 1)" in out[2].reason


def test_unknown_capacity_places_and_impossible_rejects_with_the_reason() -> None:
    d = PlannerDecider()
    big = TrainingJob("big", ResourceRequest(instance_type="p5.48xlarge"), run="true")
    svc = Service("svc", ResourceRequest(instance_type="local-cpu"), run="true")
    out = d.decide([job(1), PendingJob(2, 0, big), PendingJob(3, 0, svc)], [CPU])
    assert isinstance(out[0], Place)
    assert isinstance(out[1], Reject) and out[1].reason.startswith("no enabled provider can run it")
    assert "local: " in out[1].reason
    assert isinstance(out[2], Reject) and "services" in out[2].reason
    assert isinstance(d.decide([job(1)], [])[0], Reject)


def test_ordered_alternatives_are_tried_in_order_with_their_own_sizes() -> None:
    from intercloud.model import AcceleratorChoice

    first = ResourceRequest(instance_type="local-cpu", regions=frozenset({"r1"}), cpus=2)
    second = ResourceRequest(instance_type="local-cpu", regions=frozenset({"local"}), cpus=1)
    res = ResourceRequest(
        instance_type="local-cpu",
        alternatives=(first, second),
        alternatives_choice=AcceleratorChoice.ORDERED,
    )
    pending = [PendingJob(1, 0, TrainingJob("ordered", res, run="true"))]
    roomy = {
        ("local", "local", "", "local-cpu"): FreeCapacity(cpus=8, gpus=0, memory_gib=32),
        ("other", "r1", "", "local-cpu"): FreeCapacity(cpus=2, gpus=0, memory_gib=32),
    }
    out = PlannerDecider().decide(pending, [CPU, CPU2], roomy)
    # ordered[0] (region r1) wins although local is cheaper.
    assert isinstance(out[0], Place) and out[0].placement.region == "r1"
    assert (out[0].placement.option, out[0].demand.cpus) == (0, 2)
    tight = {**roomy, ("other", "r1", "", "local-cpu"): FreeCapacity(1, 0, 32)}
    out = PlannerDecider().decide(pending, [CPU, CPU2], tight)
    assert isinstance(out[0], Place) and out[0].placement.region == "local"
    assert (out[0].placement.option, out[0].demand.cpus) == (1, 1)
