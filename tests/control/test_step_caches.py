"""What the live loop keeps across steps to stay fast: the fleet decider's plans per job
and the jobs' decoded placements. Each is reused only while what it was computed from
is the same, and the decisions are those of a fresh computation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from snapshot_helpers import AWS, AWS_KEY, BACKED, GCP, NOW, SPOT, block, gpu_job

from intercloud.control import fleet_decider
from intercloud.control.decide import Provision
from intercloud.control.fleet_decider import FleetDecider
from intercloud.control.jobs.context import JobContext
from intercloud.control.snapshot import FleetPolicy, SnapshotInputs
from intercloud.store import Store, open_store


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The job ids ``plan_or_reject`` was called for, in order."""
    calls: list[int] = []
    real = fleet_decider.plan_or_reject

    def counting(job: Any, *args: Any) -> Any:
        calls.append(job.job_id)
        return real(job, *args)

    monkeypatch.setattr(fleet_decider, "plan_or_reject", counting)
    return calls


def _inputs(offerings: list[Any], policy: FleetPolicy | None = None) -> SnapshotInputs:
    return SnapshotInputs(offerings, NOW, None, (), (), BACKED, SPOT, None, policy or FleetPolicy())


def test_a_jobs_plan_is_reused_while_its_workload_and_offerings_stay(planned: list[int]) -> None:
    d = FleetDecider()
    jobs = [gpu_job(1), gpu_job(2, nodes=2)]
    first = d.decide_fleet(jobs, _inputs([AWS, GCP]))
    again = d.decide_fleet(jobs, _inputs([AWS, GCP]))
    assert planned == [1, 2]  # planned once each
    assert again.jobs == first.jobs
    assert [(c.offering, c.count) for c in again.capacity if isinstance(c, Provision)] == [
        (c.offering, c.count) for c in first.capacity if isinstance(c, Provision)
    ]
    # the snapshot is not cached: a cool-down of the chosen offering moves the gang
    chosen = {c.offering for c in first.capacity if isinstance(c, Provision) and c.for_job == 1}
    cooled = FleetPolicy(blocks=[block(key) for key in chosen])
    moved = d.decide_fleet(jobs[:1], _inputs([AWS, GCP], cooled))
    assert {c.offering for c in moved.capacity if isinstance(c, Provision)} - chosen
    assert planned == [1, 2]


def test_new_offerings_or_other_resources_plan_again(planned: list[int]) -> None:
    d = FleetDecider()
    first = d.decide_fleet([gpu_job(1)], _inputs([AWS, GCP]))
    # a new parse of job 1, and a new job, with the same resources: planned already
    out = d.decide_fleet([gpu_job(1), gpu_job(3)], _inputs([AWS, GCP]))
    assert planned == [1]
    fresh = FleetDecider().decide_fleet([gpu_job(1), gpu_job(3)], _inputs([AWS, GCP]))
    assert out.jobs == fresh.jobs and out.jobs[0] == first.jobs[0]
    assert planned == [1, 1]  # the fresh decider's, once for both
    out = d.decide_fleet([gpu_job(2, nodes=2)], _inputs([AWS, GCP]))  # other resources
    assert planned == [1, 1, 2]
    out = d.decide_fleet([gpu_job(1)], _inputs([AWS]))  # other offerings
    assert planned == [1, 1, 2, 1]
    assert {c.offering for c in out.capacity if isinstance(c, Provision)} == {AWS_KEY}


@pytest.fixture
def store(tmp_path: Any) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


def test_a_placement_is_decoded_again_when_the_record_changes(store: Store) -> None:
    from intercloud.control.decide import PlannerDecider

    ctx = JobContext(
        store, {}, clock=lambda: 0.0, crashpoint=lambda _n: None, decider=PlannerDecider(),
        retry_backoff_s=(0.0, 0.0), wall_clock=lambda: NOW,
    )  # fmt: skip
    j = store.submit("training", "j", "run: x\n")
    stored = {"provider": "aws", "region": "us-east-1", "zone": "us-east-1a",
              "instance_type": "p5.48xlarge", "ranks": 2}  # fmt: skip
    w = store.set_fields(j, store.get(j).version, placement=stored)
    assert w is not None
    first = ctx.placement(w)
    assert first.ranks == 2 and ctx.placement(w) is first
    w2 = store.set_fields(j, w.version, placement={**stored, "ranks": 3})
    assert w2 is not None and ctx.placement(w2).ranks == 3
    ctx.forget_inactive(set())
    assert not ctx.placements


def test_holding_jobs_are_rebuilt_when_their_record_changes(store: Store) -> None:
    from intercloud.control.decide import PlannerDecider
    from intercloud.control.jobs.pending import holding

    ctx = JobContext(
        store, {}, clock=lambda: 0.0, crashpoint=lambda _n: None, decider=PlannerDecider(),
        retry_backoff_s=(0.0, 0.0), wall_clock=lambda: NOW,
    )  # fmt: skip
    j = store.submit("training", "j", "run: x\nresources: {cpus: 1+}\n")
    placed = {"provider": "local", "region": "local", "zone": "", "instance_type": "cpu",
              "ranks": 1}  # fmt: skip
    w = store.transition(j, "PENDING", "PLACING", "placing", placement=placed, attempt=1)
    assert w is not None
    (first,) = holding(ctx)
    (again,) = holding(ctx)
    assert again is first and first.placement == placed and not first.preemptible
    ctx.queued_ahead[j] = "waits in its engine's queue"  # the record unchanged
    (queued,) = holding(ctx)
    assert queued.queued and queued.preemptible
    del ctx.queued_ahead[j]
    (first,) = holding(ctx)
    assert not first.queued and not first.preemptible
    assert ctx.holding_jobs() == [(w, first)]
    w2 = store.set_fields(j, w.version, placement={**placed, "ranks": 2})
    assert w2 is not None
    (now,) = holding(ctx)
    assert now is not first and now.placement["ranks"] == 2
    assert store.transition(j, "PLACING", "FAILED", "gone", expected_version=w2.version)
    assert holding(ctx) == [] and ctx.holding_jobs() == []


def test_pending_jobs_are_rebuilt_when_their_record_changes(store: Store) -> None:
    """``pending.place`` hands the decider the very ``PendingJob`` of last step for a
    record that did not change, and a new one when it did (a priority raised)."""
    from intercloud.control.jobs.pending import place

    class Recording:
        def __init__(self) -> None:
            self.queues: list[list[Any]] = []

        def decide(self, queue: list[Any], offerings: Any, free: Any) -> list[Any]:
            self.queues.append(list(queue))
            return []

    decider = Recording()
    ctx = JobContext(
        store, {}, clock=lambda: 0.0, crashpoint=lambda _n: None, decider=decider,  # type: ignore[arg-type]
        retry_backoff_s=(0.0, 0.0), wall_clock=lambda: NOW,
    )  # fmt: skip
    a = store.submit("training", "a", "run: x\nresources: {cpus: 1+}\n")
    b = store.submit("training", "b", "run: y\nresources: {cpus: 1+}\n")
    place(ctx, store.list_workloads(states=["PENDING"]))
    place(ctx, store.list_workloads(states=["PENDING"]))
    first, again = decider.queues
    assert [j.job_id for j in first] == [a, b]
    assert again[0] is first[0] and again[1] is first[1]
    w = store.get(b)
    assert store.set_fields(b, w.version, priority=5) is not None
    place(ctx, store.list_workloads(states=["PENDING"]))
    last = decider.queues[-1]
    assert last[0] is first[0] and last[1] is not first[1] and last[1].priority == 5
