"""Queue slots of an engine that keeps its own queue (``Capability.QUEUE``: Slurm), as the
snapshot builder feeds them to the scheduler core: a pool takes gangs beyond its free
capacity up to the queue's depth, in the core's order; a gang waiting there is not
running capacity for the tenant ledger, and may be withdrawn (``Preempt``) for a gang of
a higher priority once the queue is full."""

from __future__ import annotations

from collections.abc import Sequence

from intercloud.control.decide import Hold, PendingJob, Place, Preempt, RunningJob
from intercloud.control.fleet_decider import FleetDecider
from intercloud.control.snapshot import SnapshotInputs, build_snapshot
from intercloud.model import Offering, TrainingJob
from intercloud.providers.base import FreeCapacity
from intercloud.specs import load_spec_text

NOW = 1_700_000_000.0
# a Slurm partition's CPU offering: two nodes of 2 CPUs, together (4 CPU slots)
SLURM = Offering("slurm", "slurm", "main", "slurm-2cpu-cpu", None, 0, vcpus=4.0,
                 memory_gib=8.0, on_demand_price=0.0)  # fmt: skip
KEY = ("slurm", "slurm", "main", "slurm-2cpu-cpu")
FULL = {KEY: FreeCapacity(0.0, 0, 0.0)}
QUEUE = {KEY: FreeCapacity(4.0, 0, 8.0, 2)}  # two nodes' worth may wait in Slurm's queue


def _gang(job_id: int, priority: int = 0) -> PendingJob:
    text = "name: g\nnum_nodes: 2\nresources: {cpus: 1+}\nrun: 'true'\n"
    wl = load_spec_text(text).workload
    assert isinstance(wl, TrainingJob)
    return PendingJob(job_id, priority, wl, "default", NOW - 100 + job_id)


def _holding(
    job_id: int, priority: int = 0, queued: bool = False, preemptible: bool = False
) -> RunningJob:
    """A 2-rank gang of 1 CPU per rank on the partition: running, or waiting in Slurm's
    queue (``queued``: preemptible, i.e. it may be withdrawn)."""
    placement = {"provider": "slurm", "region": "slurm", "zone": "main",
                 "instance_type": "slurm-2cpu-cpu", "ranks": 2, "cpus_per_node": 1.0,
                 "pricing": "on_demand", "hourly_usd": 0.0}  # fmt: skip
    return RunningJob(job_id, priority, "default", placement, NOW - 50, queued=queued,
                      preemptible=queued or preemptible)  # fmt: skip


def _decide(
    pending: Sequence[PendingJob], running: Sequence[RunningJob], queue: object = QUEUE
) -> dict[int, object]:
    inputs = SnapshotInputs([SLURM], NOW, FULL, running, queue=queue)  # type: ignore[arg-type]
    out = FleetDecider().decide_fleet(pending, inputs)
    return {d.job_id: d for d in out.jobs}


def test_a_full_pool_takes_gangs_up_to_its_queue_depth_in_the_cores_order() -> None:
    running = [_holding(1), _holding(2)]  # both CPUs of both nodes taken
    pending = [_gang(10), _gang(11, priority=5), _gang(12), _gang(13)]
    got = _decide(pending, running)
    # 4 queue slots = two 2-rank gangs: the higher priority first, then the oldest
    placed = sorted(j for j, d in got.items() if isinstance(d, Place))
    assert placed == [10, 11], got
    assert all(isinstance(got[j], Hold) for j in (12, 13)), got
    # without a queue the full pool takes nothing
    none = _decide(pending, running, queue=None)
    assert not any(isinstance(d, Place) for d in none.values()), none


def test_queued_gangs_fill_the_queue_and_count_as_held_not_as_running() -> None:
    running = [_holding(1), _holding(2), _holding(3, queued=True), _holding(4, queued=True)]
    got = _decide([_gang(10)], running)
    assert isinstance(got[10], Hold), got  # the queue is full
    fleet = build_snapshot(SnapshotInputs([SLURM], NOW, FULL, running, queue=QUEUE))
    fleet.state.check_invariants()
    assert set(fleet.held) == {1, 2, 3, 4}  # all hold rows of the pool (running + queued)
    # the tenant ledger replays the running gangs only
    assert sorted(start.job_id for start in fleet.replay) == [1, 2]
    # the pool is its 4 slots plus 4 queue slots; too_big still judges the real size
    [pool] = fleet.pools
    assert (pool.total, pool.queued, fleet.spec_of(0).max_nodes) == (4, 4, 8)


def test_a_higher_priority_gang_withdraws_a_queued_one_once_the_queue_is_full() -> None:
    # the running gangs may be preempted too, but a queued one loses no work: it goes
    queued = [_holding(3, queued=True), _holding(4, priority=1, queued=True)]
    running = [_holding(1, preemptible=True), _holding(2, preemptible=True), *queued]
    got = _decide([_gang(10, priority=9)], running)
    preempted = [d for d in got.values() if isinstance(d, Preempt)]
    # the queued gang of the lowest priority makes room; the running ones go on
    assert [p.job_id for p in preempted] == [3], got
    assert isinstance(got[10], Place), got
    # a gang of no higher priority waits instead
    same = _decide([_gang(11, priority=0)], running)
    assert isinstance(same[11], Hold), same
