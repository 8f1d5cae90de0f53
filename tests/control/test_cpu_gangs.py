"""A SkyPilot multi-node CPU task is one gang for both deciders: all its nodes or none."""

from __future__ import annotations

import pytest

from intercloud.control.decide import Hold, PendingJob, Place, PlannerDecider
from intercloud.control.fleet_decider import FleetDecider
from intercloud.model import Offering, TrainingJob
from intercloud.providers.base import FreeCapacity
from intercloud.specs import load_spec_text

CPU = Offering("local", "local", "", "local-cpu", None, 0, vcpus=4, memory_gib=32,
               on_demand_price=0.25)  # fmt: skip
KEY = ("local", "local", "", "local-cpu")
NOW = 1_700_000_000.0


def _cluster(nodes: int) -> PendingJob:
    text = f"name: c\nnum_nodes: {nodes}\nresources: {{cpus: 1+}}\nrun: 'true'\n"
    workload = load_spec_text(text).workload
    assert isinstance(workload, TrainingJob) and workload.resources.accelerators == ()
    return PendingJob(1, 0, workload, "default", NOW - 10)


@pytest.mark.parametrize("decider", [FleetDecider(), PlannerDecider()], ids=["fleet", "planner"])
def test_cluster_is_placed_whole_or_held(decider: FleetDecider | PlannerDecider) -> None:
    def decide(free_cpus: float) -> object:
        free = {KEY: FreeCapacity(free_cpus, 0, 32)}
        if isinstance(decider, FleetDecider):
            (d,) = decider.decide([_cluster(3)], [CPU], free, running=[], now_s=NOW)
        else:
            (d,) = decider.decide([_cluster(3)], [CPU], free)
        return d

    placed = decide(4)
    assert isinstance(placed, Place)
    assert placed.demand.ranks == 3 and placed.demand.cpus_per_node == 1
    assert placed.placement.nodes * placed.placement.vcpus >= 3
    assert isinstance(decide(2), Hold)  # never a partial gang
