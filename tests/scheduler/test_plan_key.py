"""``plan_key``: workloads equal but for ``PLAN_IGNORES`` get the same plan, so the
API server may keep plans by it; anything else the planner reads changes the key."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

import pytest

from intercloud.catalog.loader import load_catalog
from intercloud.model import (
    AcceleratorRequest,
    BatchJob,
    DataLocation,
    ResourceRequest,
    RestartPolicy,
    Service,
    SpotPolicy,
    TrainingJob,
    Workload,
)
from intercloud.scheduler.planner import PLAN_IGNORES, Planner, plan_key

A100 = (AcceleratorRequest("A100", 8),)

WORKLOADS: list[Workload] = [
    TrainingJob(
        "t",
        ResourceRequest(accelerators=A100, num_nodes=2),
        duration_hours=10.0,
        data=DataLocation("aws", "us-east-1", 500.0),
    ),
    Service(
        "s",
        ResourceRequest(accelerators=(AcceleratorRequest("H100", 8),), spot=SpotPolicy.ALLOWED),
        min_replicas=2,
        spot_share=0.5,
    ),
    BatchJob("b", ResourceRequest(cpus=2, memory_gib=8), count=10, duration_hours=1.0),
]

#: A value for each ignored field, unlike the defaults above.
OTHER: dict[str, Any] = {
    "name": "renamed",
    "tenant": "another",
    "priority": 7,
    "setup": "pip install x",
    "run": "python other.py",
    "envs": (("A", "1"),),
    "restart": RestartPolicy(3, (1, 2)),
    "workdir": "/src",
    "file_mounts": (("/data", "s3://b"),),
    "deadline": "2030-01-01T00:00:00Z",
    "checkpoint_interval_minutes": 30.0,
    "max_replicas": 9,
    "target_rps_per_replica": 12.5,
}


@pytest.fixture(scope="module")
def planner() -> Planner:
    return Planner(load_catalog())  # the bundled one


def test_every_ignored_field_has_a_probe_value() -> None:
    assert set(OTHER) == PLAN_IGNORES


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: w.kind)
def test_ignored_fields_change_neither_key_nor_plan(planner: Planner, workload: Workload) -> None:
    base = planner.plan(workload)
    assert base.choice is not None  # the probe plans something real
    names = {f.name for f in fields(workload)}
    changed = replace(workload, **{k: v for k, v in OTHER.items() if k in names})
    assert plan_key(changed) == plan_key(workload)
    assert replace(planner.plan(changed), workload=workload.name) == base


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: w.kind)
def test_what_the_planner_reads_changes_the_key(planner: Planner, workload: Workload) -> None:
    more_nodes = replace(workload.resources, num_nodes=workload.resources.num_nodes + 1)
    assert plan_key(replace(workload, resources=more_nodes)) != plan_key(workload)
    assert plan_key(replace(workload, duration_hours=99.0)) != plan_key(workload)
    # another kind with the same fields is another key
    assert plan_key(TrainingJob("x", workload.resources)) != plan_key(
        BatchJob("x", workload.resources)
    )


def test_submissions_plan_once_per_key_under_their_own_names(planner: Planner) -> None:
    from intercloud.sdk import _Planning

    calls: list[str] = []

    class Counting:
        def plan(self, workload: Workload, top: int) -> Any:
            calls.append(workload.name)
            return planner.plan(workload, top=top)

    planning = _Planning(None, [], False, Counting(), [], None, 0.0)
    first, second = WORKLOADS[0], replace(WORKLOADS[0], name="again", run="other")
    assert planning.plan(first).workload == "t"
    again = planning.plan(second)
    assert calls == ["t"]  # the second one was kept
    assert again.workload == "again"
    assert replace(again, workload="t") == planning.plan(first)
    planning.plan(BatchJob("b", WORKLOADS[0].resources))
    assert calls == ["t", "b"]
