"""PENDING: placement. The jobs waiting (past their back-off) go to the decider at once,
in one batch; each decision is applied guarded by the version read:

    PENDING --Place-->   PLACING (placement, attempt >= 1 stored), then provisioned at once
    PENDING --Reject-->  PLACING -> FAILED (the planner's reason)
    PENDING --Hold-->    stays, ``reason`` updated (no transition)
    RUNNING --Preempt--> RECOVERING (its code stored: ``PREEMPTED``, ...) -> the recovering
                         step, which requeues it as a new attempt without counting a restart

Every decision's ``ReasonCode`` is stored with its words (``workloads.reason_code``).

A fleet-aware decider also gets the jobs holding capacity, the wall clock and the
store's tenants with their limits (``control.tenancy.load_tenant_limits``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from intercloud.control.decide import (
    Decision,
    FleetAwareDecider,
    Hold,
    PendingJob,
    Place,
    Preempt,
    Reject,
    RunningJob,
)
from intercloud.control.fleet_decider import FleetDecider
from intercloud.control.identity_runs import same_runs
from intercloud.control.jobs.context import JobContext
from intercloud.control.jobs.placing import provision, withdraw
from intercloud.control.jobs.recovering import recover
from intercloud.control.states import JobState
from intercloud.model import JobPlacement
from intercloud.providers.base import ProviderError
from intercloud.scheduler.reasons import ReasonCode
from intercloud.store import Desired, WorkloadRecord

if TYPE_CHECKING:
    from intercloud.control.capacity import CapacitySetup

#: instance states whose rows make up the fleet (the rest are history)
_LIVE_INSTANCE_STATES = ("requested", "allocated", "running", "draining", "terminating")

log = logging.getLogger("intercloud.control")

S = JobState
#: states in which a job holds (or is about to hold) provider capacity
HOLDING: tuple[JobState, ...] = (S.PLACING, S.PROVISIONING, S.RUNNING, S.RECOVERING, S.CANCELLING)


def place(ctx: JobContext, pending: Sequence[WorkloadRecord]) -> bool:
    """Decide for every PENDING job past its back-off and apply the decisions; True if
    anything changed. A job whose spec no longer parses is rejected."""
    now = ctx.clock()
    by_id = {w.id: w for w in pending if ctx.retry_at.get(w.id, 0.0) <= now}
    queue: list[PendingJob] = []
    changed = False
    # a record that is last step's very object keeps its ``PendingJob``
    last, ctx.pending_jobs = ctx.pending_jobs, {}
    for w in by_id.values():
        hit = last.get(w.id)
        if hit is not None and hit[0] is w:
            queue.append(hit[1])
            ctx.pending_jobs[w.id] = hit
            continue
        wl = ctx.workload(w)
        if isinstance(wl, str):
            changed |= reject(ctx, w, wl, ReasonCode.NOT_RUNNABLE)
        else:
            job = PendingJob(w.id, w.priority, wl, w.tenant, w.created_at.timestamp())
            queue.append(job)
            ctx.pending_jobs[w.id] = (w, job)
    if not queue and ctx.capacity is None:
        return changed
    if ctx.capacity is not None and isinstance(ctx.decider, FleetDecider):
        decisions, more = _decide_with_instances(ctx, ctx.decider, ctx.capacity, queue)
        changed |= more
    elif isinstance(ctx.decider, FleetDecider):
        decisions, more = _decide_job_level(ctx, ctx.decider, queue)
        changed |= more
    elif getattr(ctx.decider, "fleet_aware", False):
        fleet_decider: FleetAwareDecider = ctx.decider  # type: ignore[assignment]
        from intercloud.control.tenancy import load_tenant_limits

        decisions = fleet_decider.decide(
            queue,
            ctx.offerings(),
            ctx.free_capacity(),
            running=holding(ctx),
            now_s=ctx.wall_clock(),
            tenants=load_tenant_limits(ctx.store),
        )
    else:
        decisions = ctx.decider.decide(queue, ctx.offerings(), ctx.free_capacity())
    # the reasons of gangs waiting in an engine's queue (PLACING handler) go with them
    holds: list[tuple[int, int, str, ReasonCode | None]] = ctx.queued_reasons
    ctx.queued_reasons = []
    placed = _to_placing(ctx, by_id, [d for d in decisions if isinstance(d, Place)])
    for d in decisions:
        if isinstance(d, Preempt):
            changed |= preempt(ctx, d)
            continue
        w = by_id[d.job_id]
        if isinstance(d, Reject):
            changed |= reject(ctx, w, d.reason, d.code)
        elif isinstance(d, Hold):
            if w.reason != d.reason or w.reason_code != d.code:
                holds.append((w.id, w.version, d.reason, d.code))
        elif isinstance(d, Place):
            rec = placed.get(d.job_id)
            if rec is not None:
                _provision_placed(ctx, w, d, rec)
                changed = True
    # every changed reason in one transaction: a burst of submissions is held at once
    changed |= bool(ctx.store.set_reasons(holds))
    return changed


def _decide_with_instances(
    ctx: JobContext, decider: FleetDecider, setup: CapacitySetup, queue: list[PendingJob]
) -> tuple[Sequence[Decision], bool]:
    """The fleet decider over the whole snapshot (``control.snapshot``): instance-backed
    pools grow and shrink (``Provision``/``Release``, made real in the store by
    ``control.capacity``), cool-downs and down providers bind, and the running jobs of a
    down provider are requeued from their checkpoint (as a preemption). Returns the job
    decisions and whether the capacity ones changed anything."""
    from intercloud.control.capacity import apply_capacity_decisions, within_provider_limits
    from intercloud.control.snapshot import SnapshotInputs, with_store_state
    from intercloud.control.tenancy import load_tenant_limits

    now_s = ctx.wall_clock()
    now = datetime.fromtimestamp(now_s, UTC)
    store = ctx.store
    read = store.cycle_state(now)  # tenants, health and cool-downs: one round trip
    inputs = SnapshotInputs(
        offerings=ctx.offerings(),
        now_s=now_s,
        free=ctx.free_capacity(),
        running=holding(ctx),
        instances=store.instances(states=list(_LIVE_INSTANCE_STATES)),
        instance_backed=setup.instance_backed,
        spot_providers=setup.spot_providers,
        tenants=load_tenant_limits(store, records=read.tenants),
        policy=with_store_state(setup.settings.policy, store, now, read),
        queue=ctx.queue_capacity(),
    )
    out = decider.decide_fleet(queue, inputs)
    capacity = out.capacity
    if setup.provider_max:
        live = Counter(r.provider for r in inputs.instances)
        capacity = within_provider_limits(capacity, live, setup.provider_max)
    changed = apply_capacity_decisions(store, capacity, now)
    for r in out.requeue:
        changed |= preempt(ctx, Preempt(r.job_id, -1, r.reason, ReasonCode.PROVIDER_DOWN))
    return out.jobs, changed


def _decide_job_level(
    ctx: JobContext, decider: FleetDecider, queue: list[PendingJob]
) -> tuple[Sequence[Decision], bool]:
    """The fleet decider over job-level providers only (local sites, Ray, ...), with
    the store's cool-downs and down providers (``observe`` records a job-level
    provider's failing polls): a down provider's pools take nothing new, and its running
    jobs are requeued from their checkpoint (as a preemption), as with instances."""
    from intercloud.control.snapshot import FleetPolicy, SnapshotInputs, with_store_state
    from intercloud.control.tenancy import load_tenant_limits

    now_s = ctx.wall_clock()
    now = datetime.fromtimestamp(now_s, UTC)
    read = ctx.store.cycle_state(now)  # tenants, health and cool-downs: one round trip
    inputs = SnapshotInputs(
        ctx.offerings(),
        now_s,
        ctx.free_capacity(),
        holding(ctx),
        tenants=load_tenant_limits(ctx.store, records=read.tenants),
        policy=with_store_state(FleetPolicy(), ctx.store, now, read),
        queue=ctx.queue_capacity(),
    )
    out = decider.decide_fleet(queue, inputs)
    changed = False
    for r in out.requeue:
        changed |= preempt(ctx, Preempt(r.job_id, -1, r.reason, ReasonCode.PROVIDER_DOWN))
    return out.jobs, changed


def _to_placing(
    ctx: JobContext, by_id: dict[int, WorkloadRecord], places: Sequence[Place]
) -> dict[int, WorkloadRecord]:
    """PENDING -> PLACING with the placement stored, for every ``Place`` of the cycle in
    one transaction (one commit, not one per job): each move still a guarded
    compare-and-set with its event; a job whose guard fails (it changed meanwhile) is
    left out of the returned records (job id -> PLACING record), the others go on.
    Provisioning comes after the commit (``_provision_placed``): a crash in between
    leaves PLACING jobs, which the PLACING handler provisions."""
    out: dict[int, WorkloadRecord] = {}
    if not places:
        return out
    with ctx.store.atomic():
        for d in places:
            w = by_id[d.job_id]
            p = d.placement
            jp = JobPlacement(
                p, d.demand.ranks, d.demand.cpus_per_node, d.demand.memory_gib_per_node,
                d.instances,
            )  # fmt: skip
            reason = (
                f"placed on {p.where}: {d.demand.ranks} node(s), "
                f"{p.pricing.value}, {p.hourly_usd:.2f} USD/h"
            )
            rec = ctx.store.transition(
                w.id,
                S.PENDING,
                S.PLACING,
                reason,
                expected_version=w.version,
                placement=jp.to_stored(),
                attempt=max(w.attempt, 1),
            )
            if rec is not None:
                out[w.id] = rec
    return out


def _provision_placed(ctx: JobContext, w: WorkloadRecord, d: Place, rec: WorkloadRecord) -> None:
    """What follows a job's move to PLACING: keep the engines' queue order, provision."""
    ctx.crashpoint("placing")
    _withdraw_behind(ctx, w, d)
    try:
        provision(ctx, rec)
    except ProviderError as exc:
        log.warning("job %s (PLACING): %s", w.id, exc)


def _withdraw_behind(ctx: JobContext, w: WorkloadRecord, d: Place) -> None:
    """Keep intercloud's order in an engine's own queue: the gangs of a lower priority
    than ``w`` waiting there on the same offering are taken back out (placed again
    after ``w``, so the engine, first come first served, starts ``w`` first)."""
    if not ctx.queued_ahead:
        return
    p = d.placement
    key = (p.provider, p.region, p.zone, p.instance_type)
    for rec, job in ctx.holding_jobs():
        j = rec.id
        pl = job.placement
        where = (
            pl.get("provider"),
            pl.get("region"),
            pl.get("zone") or "",
            pl.get("instance_type"),
        )
        if j in ctx.queued_ahead and job.priority < w.priority and where == key:
            why = f"job {w.id} of priority {w.priority} goes first"
            try:
                withdraw(ctx, rec, why, ReasonCode.PREEMPTED)
            except ProviderError as exc:
                log.warning("job %s (PLACING): withdraw: %s", j, exc)


def holding(ctx: JobContext) -> list[RunningJob]:
    """The jobs holding capacity, as the store says now (read again: jobs may have
    finished earlier in this step). Only RUNNING jobs not being cancelled may be
    preempted. The records that are the very objects of last step's read, at the same
    places (``identity_runs``: the store's bulk reads hand back unchanged rows as the
    same records), keep their ``RunningJob``; only the others are looked at."""
    rows = ctx.store.list_workloads(states=HOLDING)
    queued = frozenset(ctx.queued_ahead)
    last_rows, before, last_queued = ctx.holding_rows or ([], [], None)
    # (none kept on the first step, or when what is queued in an engine changed)
    runs = (same_runs(last_rows, rows) if last_queued == queued else None) or []
    jobs: list[RunningJob | None] = [None] * len(rows)
    j = 0
    for start, k, at in [*runs, (len(rows), 0, 0)]:  # (an empty run closes the list)
        for n in range(j, start):
            jobs[n] = _holding_job(ctx, rows[n], queued)
        jobs[start : start + k] = before[at : at + k]
        j = start + k
    ctx.holding_rows = (rows, jobs, queued)
    return list(filter(None, jobs))


def _holding_job(
    ctx: JobContext, w: WorkloadRecord, queued_ahead: frozenset[int]
) -> RunningJob | None:
    """``w`` as a job holding capacity (None: it holds none yet)."""
    if not w.placement or w.attempt < 1:
        return None
    queued = w.state is S.PLACING and w.id in queued_ahead
    wl = ctx.workload(w)
    hours = wl.duration_hours if not isinstance(wl, str) else None
    return RunningJob(
        job_id=w.id,
        priority=w.priority,
        tenant=w.tenant,
        placement=w.placement,
        since_s=w.updated_at.timestamp(),
        duration_s=hours * 3600.0 if hours else None,
        # a gang waiting in its engine's queue may be withdrawn for work of a higher
        # priority (``preempt``), as a running one may be preempted
        preemptible=(w.state is S.RUNNING or queued) and w.desired is not Desired.CANCEL,
        queued=queued,
    )


def preempt(ctx: JobContext, d: Preempt) -> bool:
    """Stop a running job for ``d.for_job`` and requeue it (``recovering.recover``)."""
    w = ctx.store.get(d.job_id)
    if w.state is S.PLACING and w.id in ctx.queued_ahead and w.desired is not Desired.CANCEL:
        try:
            why = f"job {d.for_job} of a higher priority goes first"
            return withdraw(ctx, w, why, d.code)
        except ProviderError as exc:
            log.warning("job %s (PLACING): withdraw: %s", w.id, exc)
            return False
    if w.state is not S.RUNNING or w.desired is Desired.CANCEL:
        return False
    rec = ctx.store.transition(
        w.id, S.RUNNING, S.RECOVERING, d.reason, expected_version=w.version, reason_code=d.code
    )
    if rec is None:
        return False
    ctx.crashpoint("recovering")
    try:
        recover(ctx, rec)
    except ProviderError as exc:
        log.warning("job %s (RECOVERING): %s", w.id, exc)
    return True


def reject(ctx: JobContext, w: WorkloadRecord, reason: str, code: ReasonCode) -> bool:
    """PENDING -> PLACING -> FAILED with ``reason`` and ``code`` (it can never run here)."""
    rec = ctx.store.transition(w.id, S.PENDING, S.PLACING, "placing", expected_version=w.version)
    if rec is None:
        return False
    ctx.crashpoint("placing")
    ctx.store.transition(
        w.id, S.PLACING, S.FAILED, reason, expected_version=rec.version, reason_code=code
    )
    ctx.crashpoint("placing")
    return True
