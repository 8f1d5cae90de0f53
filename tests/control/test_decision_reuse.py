"""The fleet decider hands back its last cycle of holds while nothing it read changed
(``control.decision_reuse``), and decides afresh the moment something did."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
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

from intercloud.control.decide import Hold, PendingJob, Place, Release, RunningJob
from intercloud.control.decision_reuse import horizon
from intercloud.control.fleet_decider import FleetDecider
from intercloud.control.snapshot import FleetPolicy, SnapshotInputs
from intercloud.model import Offering
from intercloud.store.records import InstanceRecord

FULL = FleetPolicy(max_instances={AWS_KEY: 1, GCP_KEY: 1}, idle_release_s=600.0)


def inputs(
    running: Sequence[RunningJob],
    instances: Sequence[InstanceRecord],
    now: float = NOW,
    policy: FleetPolicy = FULL,
) -> SnapshotInputs:
    return SnapshotInputs([AWS, GCP], now, None, list(running), list(instances), BACKED, SPOT,
                          None, policy)  # fmt: skip


def _full_fleet() -> tuple[list[RunningJob], list[InstanceRecord]]:
    """Each pool at its maximum of one instance, each running a job."""
    running = [running_on(1, AWS, 1), running_on(2, GCP, 1)]
    insts = [instance(AWS, job=1, rank=0), instance(GCP, job=2, rank=0)]
    return running, insts


def test_a_held_job_is_placed_in_the_step_after_capacity_frees() -> None:
    running, insts = _full_fleet()
    pending = [gpu_job(5)]
    decider = FleetDecider()
    first = decider.decide_fleet(pending, inputs(running, insts))
    assert [type(d) for d in first.jobs] == [Hold] and not first.capacity
    again = decider.decide_fleet(pending, inputs(running, insts, NOW + 1))
    assert decider.reuse.reused == 1
    assert again.jobs == first.jobs
    # job 1 ends: its instance is idle (a new row version, as the store hands it back)
    idle = replace(insts[0], workload_id=None, rank=None, attempt=None, version=2,
                   idle_since=NOW_DT)  # fmt: skip
    freed = decider.decide_fleet(pending, inputs(running[1:], [idle, insts[1]], NOW + 2))
    assert decider.reuse.reused == 1
    (d,) = freed.jobs
    assert isinstance(d, Place) and d.instances == (idle.id,)


def test_a_new_pending_job_or_a_policy_change_is_decided_afresh() -> None:
    running, insts = _full_fleet()
    decider = FleetDecider()
    decider.decide_fleet([gpu_job(5)], inputs(running, insts))
    out = decider.decide_fleet([gpu_job(5), gpu_job(6)], inputs(running, insts, NOW + 1))
    assert decider.reuse.reused == 0 and {d.job_id for d in out.jobs} == {5, 6}
    bigger = replace(FULL, max_instances={AWS_KEY: 2, GCP_KEY: 1})
    grown = decider.decide_fleet([gpu_job(5), gpu_job(6)],
                                 inputs(running, insts, NOW + 2, bigger))  # fmt: skip
    assert decider.reuse.reused == 0 and grown.capacity  # the pool may grow: it does


def test_an_instance_becoming_releasable_ends_the_reuse_at_that_instant() -> None:
    idle = instance(GCP, idle_for_s=597.0)  # releasable at NOW + 3
    decider = FleetDecider()
    assert horizon(inputs([], [idle])) == NOW + 3.0
    assert not decider.decide_fleet([], inputs([], [idle])).capacity
    assert not decider.decide_fleet([], inputs([], [idle], NOW + 2)).capacity
    assert decider.reuse.reused == 1
    later = decider.decide_fleet([], inputs([], [idle], NOW + 4))
    assert decider.reuse.reused == 1
    assert [type(c) for c in later.capacity] == [Release]


def test_a_cooldown_ending_and_the_resync_bound_end_the_reuse() -> None:
    running, insts = _full_fleet()
    cool = replace(FULL, blocks=(block(AWS_KEY, for_s=5.0),))
    assert horizon(inputs(running, insts, policy=cool)) == NOW + 5.0
    assert horizon(inputs(running, insts), resync_s=7.0) == NOW + 7.0
    decider = FleetDecider()
    decider.reuse.resync_s = 0.0  # off: every cycle is decided afresh
    for t in (0.0, 1.0):
        decider.decide_fleet([gpu_job(5)], inputs(running, insts, NOW + t))
    assert decider.reuse.reused == 0


def test_a_list_refilled_in_place_is_not_taken_for_the_same_inputs() -> None:
    running, insts = _full_fleet()
    decider = FleetDecider()
    pending = [gpu_job(5)]
    decider.decide_fleet(pending, inputs(running, insts))
    insts[0] = replace(insts[0], workload_id=None, rank=None, attempt=None, version=2,
                       idle_since=NOW_DT)  # fmt: skip
    running.pop(0)
    out = decider.decide_fleet(pending, inputs(running, insts, NOW + 1))
    assert decider.reuse.reused == 0 and isinstance(out.jobs[0], Place)


def _bind(inst: InstanceRecord, job: int | None, rank: int | None, now: float) -> InstanceRecord:
    idle = None if job is not None else NOW_DT + timedelta(seconds=now - NOW)
    return replace(inst, workload_id=job, rank=rank, version=inst.version + 1, idle_since=idle)


def test_reused_cycles_equal_fresh_ones_over_a_random_run() -> None:
    """Jobs arrive, end and are placed, instances go idle and are released, time moves
    by small and large steps: every cycle of a reusing decider equals a fresh
    decider's on the same inputs, and some cycles were reused."""
    rng = random.Random(7)
    offerings: list[Offering] = [AWS, GCP]
    policy = replace(FULL, max_instances={AWS_KEY: 2, GCP_KEY: 2}, idle_release_s=30.0)
    insts: dict[int, InstanceRecord] = {}
    for o in offerings:
        for _ in range(2):
            inst = instance(o, idle_for_s=rng.uniform(0.0, 20.0))
            insts[inst.id] = inst
    running: dict[int, RunningJob] = {}
    pending: list[PendingJob] = []
    reusing = FleetDecider()
    next_job, now = 10, NOW
    for _ in range(120):
        op = rng.random()
        if op < 0.2:
            pending.append(gpu_job(next_job))
            next_job += 1
        elif op < 0.35 and running:
            job = rng.choice(sorted(running))
            del running[job]
            for iid, inst in list(insts.items()):
                if inst.workload_id == job:
                    insts[iid] = _bind(inst, None, None, now)
        now += rng.choice((0.0, 0.5, 1.0, 3.0, 12.0))
        inp = SnapshotInputs(offerings, now, None, list(running.values()),
                             sorted(insts.values(), key=lambda i: i.id), BACKED, SPOT,
                             None, policy)  # fmt: skip
        got = reusing.decide_fleet(list(pending), inp)
        want = FleetDecider().decide_fleet(list(pending), inp)
        assert got == want
        for d in got.jobs:  # apply the placements as the reconciler would
            if isinstance(d, Place):
                offering = next(o for o in offerings if o.provider == d.placement.provider)
                running[d.job_id] = replace(running_on(d.job_id, offering, 1), since_s=now)
                for rank, iid in enumerate(d.instances):
                    insts[iid] = _bind(insts[iid], d.job_id, rank, now)
                pending = [p for p in pending if p.job_id != d.job_id]
        for c in got.capacity:
            if isinstance(c, Release):
                for iid in c.instance_ids:
                    del insts[iid]
            else:  # a launch comes up at once, idle
                key = c.offering
                o = next(x for x in offerings if (x.provider, x.region, x.zone,
                                                  x.instance_type) == key)  # fmt: skip
                for _ in range(c.count):
                    fresh = _bind(instance(o), None, None, now)
                    insts[fresh.id] = fresh
    assert reusing.reuse.reused > 10


def test_a_priority_raised_between_cycles_reorders_the_queue() -> None:
    """The decider keeps each pending job's candidates while the pools are the same;
    a job's new priority still reaches its gang request."""
    running, insts = _full_fleet()
    decider = FleetDecider()
    low, high = gpu_job(5), gpu_job(6)
    held = decider.decide_fleet([low, high], inputs(running, insts))
    assert all(isinstance(d, Hold) for d in held.jobs)
    idle = replace(insts[0], workload_id=None, rank=None, attempt=None, version=2,
                   idle_since=NOW_DT)  # fmt: skip
    freed = inputs(running[1:], [idle, insts[1]], NOW + 1)
    first = decider.decide_fleet([low, replace(high, priority=5)], freed)
    placed = [d.job_id for d in first.jobs if isinstance(d, Place)]
    assert placed == [6]
    other = FleetDecider()
    other.decide_fleet([low, high], inputs(running, insts))
    flipped = other.decide_fleet([replace(low, priority=5), high], freed)
    assert [d.job_id for d in flipped.jobs if isinstance(d, Place)] == [5]
