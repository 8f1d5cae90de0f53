"""Fidelity: a contended scenario (more work than capacity, gangs, a preemption, a job
too large for the fleet, a node lost under a running gang) through the live control
loop on the local provider with a logical clock, and through the twin on the same fleet
description: the same decisions, at the same times, in the same order. No timing: the
live side runs real processes, but every time it sees is the injected logical clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from intercloud.store import Store, open_store
from intercloud.twin.failures import NodeLoss
from intercloud.twin.fidelity import Scenario, ScenarioJob, local_site, run_live, run_twin
from node_processes import leftovers_killed

FLEET = """
name: fidelity
providers:
  - name: local
    regions:
      - name: local
        zones:
          - name: local-a
            pools:
              - {instance_type: local-cpu, pricing: committed, nodes: 4, usd_per_node_hour: 1,
                 shape: {gpus_per_node: 0, vcpus: 1, memory_gib: 2}}
"""

# (submit s, duration s, nodes, priority): 4 CPU nodes, 24 node-hours asked in 10 min
JOBS = [
    ScenarioJob(0, 600, 2),
    ScenarioJob(0, 900, 1),
    ScenarioJob(60, 300, 3),  # waits for 3 free nodes; smaller jobs backfill past it
    ScenarioJob(120, 300, 1),
    ScenarioJob(200, 1200, 4, priority=5),  # a 4-node gang that preempts everything
    ScenarioJob(250, 100, 5),  # larger than the fleet: rejected, never dropped
    ScenarioJob(300, 200, 1),
    ScenarioJob(400, 500, 2),
    ScenarioJob(500, 100, 1),
]
LOSS = NodeLoss(job=4, at_s=600)  # a node of the running 4-node gang dies


@pytest.fixture
def scenario() -> Scenario:
    return Scenario.from_fleet_text(FLEET, JOBS, [LOSS])


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    r = tmp_path / "local"
    yield r
    assert leftovers_killed(r) == []


def sqlite(tmp_path: Path) -> Callable[[Callable[[], datetime]], Store]:
    return lambda clock: open_store(f"sqlite:///{tmp_path}/store.db", clock=clock)


def test_live_loop_and_twin_decide_the_same(scenario: Scenario, tmp_path: Path, root: Path) -> None:
    twin = run_twin(scenario)
    live = run_live(scenario, sqlite(tmp_path), root, clock="logical")
    assert live.decisions == twin.decisions
    kinds = [k for _, k, _ in twin.decisions]
    # the scenario is contended: it preempts, rejects, loses a node and backfills
    assert kinds.count("preempt") == 3 and kinds.count("reject") == 1
    assert (600.0, "lost", 4) in twin.decisions
    assert (600.0, "place", 4) in twin.decisions  # the gang restarts at once
    placed = {j for _, k, j in twin.decisions if k == "place"}
    assert placed == set(range(len(JOBS))) - {5}
    # and so the same figures
    assert live.makespan_s == twin.makespan_s == 3200.0
    assert live.jct_mean_s == pytest.approx(twin.jct_mean_s)
    assert live.node_hours == pytest.approx(twin.node_hours)
    states = live.extra["states"]
    assert states.count("SUCCEEDED") == len(JOBS) - 1 and states[5] == "FAILED"


def test_the_comparison_sees_a_different_policy(scenario: Scenario) -> None:
    """The twin without the loss decides differently: the check can fail."""
    other = run_twin(Scenario(scenario.fleet, scenario.jobs, ()))
    assert other.decisions != run_twin(scenario).decisions


def test_local_site_is_the_fleet_description(scenario: Scenario) -> None:
    site = local_site(scenario.fleet)
    assert (site.provider, site.region, site.zone, site.cpu_slots) == (
        "local", "local", "local-a", 4.0,
    )  # fmt: skip
    gpu = FLEET.replace(
        "gpus_per_node: 0, vcpus: 1", "accelerator: H100, gpus_per_node: 8, vcpus: 8"
    )
    with pytest.raises(ValueError, match="one CPU pool"):
        local_site(Scenario.from_fleet_text(gpu, JOBS).fleet)
    two = FLEET.replace("vcpus: 1,", "vcpus: 2,")
    with pytest.raises(ValueError, match="one vCPU"):
        local_site(Scenario.from_fleet_text(two, JOBS).fleet)
