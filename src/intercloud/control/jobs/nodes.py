"""Node work shared by the job handlers: observe ends, adopt, claim and start, tear down.

Invariants kept here:

- a node (job, attempt, rank) is claimed in the store before it is started; the claim is
  unique, so no loop ever starts it twice. A claimed node whose start is unknown (the loop
  died in between) is started again only if the provider proves it never started
  (``NodeLookup``: no recorded run and nobody holds its lock); otherwise it is adopted;
- a node is recorded ``killed`` only after ``kill`` returned (the provider guarantees it
  is gone), so two runs of one node never overlap.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from intercloud.control.job_context import job_env, job_files
from intercloud.control.jobs.context import JobContext
from intercloud.model import BatchJob, TrainingJob, Workload
from intercloud.providers.base import (
    Allocation,
    NodeAlreadyRunning,
    NodeAlreadyStarted,
    NodeCommand,
    NodeEvent,
    NodeEventKind,
    NodeHandle,
    Provider,
    ProviderError,
)
from intercloud.scheduler.reasons import ReasonCode
from intercloud.store import NodeRecord, NodeState, WorkloadRecord

log = logging.getLogger("intercloud.control")


@runtime_checkable
class NodeLookup(Protocol):
    """What a provider must answer for a loop to resume a node whose start is unknown.

    ``node_handle``: the recorded run of this node, None if it never started (or has not
    recorded itself yet). ``node_alive``: some process of a run of this node exists now.
    """

    def node_handle(self, job_id: str, attempt: int, rank: int) -> NodeHandle | None: ...

    def node_alive(self, job_id: str, attempt: int, rank: int) -> bool: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the nodes of one attempt stand."""

    failed_rank: int | None = None  # a rank that exited non-zero or was lost
    exit_code: int | None = None
    why: str = ""
    succeeded: bool = False  # every rank exited 0
    started: bool = False  # every rank has left ``starting``


def outcome(nodes: Sequence[NodeRecord], ranks: int) -> Outcome:
    """The gang's standing; with several failed ranks, the one that ended first is the
    cause (the others usually died of it: a peer vanishing breaks their collectives)."""
    by_rank = {n.rank: n for n in nodes}
    never = datetime.max.replace(tzinfo=UTC)
    for n in sorted(nodes, key=lambda n: (n.ended_at or never, n.rank)):
        if n.state is NodeState.EXITED and n.exit_code != 0:
            return Outcome(n.rank, n.exit_code, f"rank {n.rank} exited {n.exit_code}")
        if n.state in (NodeState.LOST, NodeState.KILLED):
            return Outcome(n.rank, None, f"rank {n.rank} {n.state.value}")
    complete = all(r in by_rank for r in range(ranks))
    started = complete and all(by_rank[r].state is not NodeState.STARTING for r in range(ranks))
    succeeded = complete and all(by_rank[r].state is NodeState.EXITED for r in range(ranks))
    return Outcome(succeeded=succeeded, started=started)


def handle_of(n: NodeRecord) -> NodeHandle:
    """The provider handle of a recorded (started) node."""
    extra = dict(n.extra or {})
    if n.pid:  # the process identity the store keeps in columns (for display too)
        extra.setdefault("pid", n.pid)
        extra.setdefault("start_time", n.start_time or 0)
    return NodeHandle(
        job_id=str(n.workload_id), attempt=n.attempt, rank=n.rank, provider=n.provider, extra=extra
    )


# -- observe (passive) -------------------------------------------------------------------
def observe(ctx: JobContext) -> bool:
    """Record every node end the providers report (``exited`` or ``lost``); True if a
    node record changed. Events of jobs that are not ours are ignored."""
    changed = False
    for name, provider in ctx.providers.items():
        for ev in _poll(ctx, name, provider):
            try:
                job_id = int(ev.job_id)
            except ValueError:
                continue  # not one of ours
            key = (job_id, ev.attempt, ev.rank)
            ctx.tracked.discard(key)
            code = _capacity_loss(ctx, name, ev)
            if code is not None:
                changed |= _requeue_for_loss(ctx, job_id, ev, code)
            if ev.kind is NodeEventKind.EXITED:
                state, reason = NodeState.EXITED, None
            else:
                state, reason = NodeState.LOST, ev.reason or ev.kind.value
            # The node's own end time, when known, orders failures (first = cause).
            ended = None
            if ev.ended_at is not None:
                ended = datetime.fromtimestamp(ev.ended_at, UTC)
            rec = ctx.store.record_node_ended(
                job_id, ev.attempt, ev.rank, state, ev.exit_code, reason=reason, now=ended
            )
            changed |= rec is not None
            ctx.crashpoint("exited")
    return changed


def _poll(ctx: JobContext, name: str, provider: Provider) -> list[NodeEvent]:
    """``provider.poll()``; a provider that fails is one warning per failure streak and
    no events (its nodes are reported once it answers, or lost by the provider), never
    a failed step for the other providers' nodes. A job-level provider's health is
    recorded every step (``store.record_provider_call``): failed while its poll fails
    or it says it is ``unreachable``, so one unreachable for ``failover.down_after_s``
    is down for the fleet decider, ``status`` and ``fleet``; instance-backed ones
    record their own calls."""
    events: list[NodeEvent] = []
    try:
        events = provider.poll()
        error = provider.unreachable()
    except ProviderError as exc:
        error = " ".join(str(exc).split())
    # the last error (None: healthy; "": not seen yet this run)
    last = ctx.poll_errors.get(name, "")
    if error is not None and last != error:
        log.warning("provider %s: %s", name, error)
    elif error is None and last:
        log.info("provider %s answers again", name)
    backed = ctx.capacity.instance_backed if ctx.capacity is not None else frozenset()
    if name not in backed and (error is not None or last or (last == "" and _failing(ctx, name))):
        ctx.store.record_provider_call(
            name, ok=error is None, error=error, now=ctx.now(), down_after_s=ctx.down_after_s
        )
    ctx.poll_errors[name] = error
    return events


def _failing(ctx: JobContext, name: str) -> bool:
    """Whether the store has provider ``name`` failing (a restarted loop brings up, on
    its first good poll, a provider that an earlier loop recorded failing)."""
    return any(h.name == name and h.first_error_at for h in ctx.store.provider_health())


def _capacity_loss(ctx: JobContext, provider: str, ev: NodeEvent) -> ReasonCode | None:
    """The requeue code when ``ev`` says the node's capacity went away rather than the
    job failing: a provider taking the node back (``PREEMPTED``), or the instance
    under it ending without our asking (``LOST`` from an instance-backed provider: its
    instance was terminated from outside or vanished; a cluster node that died:
    ``capacity_lost``). None: the job's own failure
    (a ``LOST`` local process, an exit), which the restart policy judges."""
    if ev.kind is NodeEventKind.PREEMPTED:
        return ReasonCode.SPOT_RECLAIMED
    backed = ctx.capacity.instance_backed if ctx.capacity is not None else frozenset()
    if ev.kind is NodeEventKind.LOST and (provider in backed or ev.capacity_lost):
        return ReasonCode.INSTANCE_LOST
    return None


def _requeue_for_loss(ctx: JobContext, job_id: int, ev: NodeEvent, code: ReasonCode) -> bool:
    """RUNNING/PROVISIONING -> RECOVERING with ``code`` (a requeue code: a new attempt
    from the last checkpoint, no restart counted), before the node's end is recorded:
    a loop killed in between finds the code stored and still requeues."""
    from intercloud.control.states import JobState
    from intercloud.store import Desired

    w = ctx.store.get(job_id)
    if (
        w.attempt != ev.attempt
        or w.state not in (JobState.RUNNING, JobState.PROVISIONING)
        or w.desired is Desired.CANCEL
    ):
        return False
    why = f"rank {ev.rank} lost: {ev.reason or ev.kind.value}; requeued from its last checkpoint"
    rec = ctx.store.transition(
        w.id, w.state, JobState.RECOVERING, why, expected_version=w.version, reason_code=code
    )
    if rec is not None:
        ctx.crashpoint("recovering")
    return rec is not None


# -- adopt -------------------------------------------------------------------------------
def reattach(ctx: JobContext, n: NodeRecord) -> int:
    """Adopt a live node the store records (``running``, or ``starting`` with a run the
    provider recorded); a node the provider no longer has is recorded ``lost``. Returns
    1 when the node was re-attached or found gone, 0 when it cannot tell yet."""
    provider = ctx.providers.get(n.provider)
    key = (n.workload_id, n.attempt, n.rank)
    if provider is None:
        log.warning("node %s: provider %s is not enabled", key, n.provider)
        return 0
    if n.state is NodeState.RUNNING:
        handle = handle_of(n)
    else:
        if not isinstance(provider, NodeLookup):
            return 0
        found = provider.node_handle(str(n.workload_id), n.attempt, n.rank)
        if found is None:
            return 0
        handle = found
        ctx.store.record_node_started(
            n.workload_id,
            n.attempt,
            n.rank,
            n.host or "",
            int(handle.extra.get("pid") or 0),
            int(handle.extra.get("start_time") or 0),
            extra=dict(handle.extra),
        )
        ctx.crashpoint("adopting")
    if provider.adopt(handle):
        ctx.tracked.add(key)
    else:
        ctx.store.record_node_ended(
            n.workload_id, n.attempt, n.rank, NodeState.LOST, reason="gone after a restart"
        )
    ctx.crashpoint("adopting")
    return 1


# -- start -------------------------------------------------------------------------------
def command(
    w: WorkloadRecord,
    wl: Workload,
    allocation: Allocation,
    rank: int,
    ranks: int,
    checkpoint_root: str | None = None,
) -> NodeCommand:
    """What rank ``rank`` of the gang runs. ``checkpoint_root``: the shared folder every
    provider's nodes reach (config ``checkpoint_dir``); the job checkpoints to
    ``<root>/<job id>`` on every attempt and provider. None: the provider's own folder
    (a local one, or the instance's disk, which a lost instance takes with it)."""
    assert isinstance(wl, TrainingJob | BatchJob) and wl.run
    return NodeCommand(
        job_id=str(w.id),
        attempt=w.attempt,
        rank=rank,
        num_nodes=ranks,
        setup=wl.setup,
        run=wl.run,
        env=job_env(w, wl, allocation, rank, ranks),
        log_dir="",
        checkpoint_dir=str(Path(checkpoint_root) / str(w.id)) if checkpoint_root else "",
        **job_files(w, wl),
    )


def launch(
    ctx: JobContext,
    w: WorkloadRecord,
    wl: Workload,
    provider: Provider,
    allocation: Allocation,
    rank: int,
    ranks: int,
) -> bool:
    """Start a claimed node (or adopt the run the provider already has of it)."""
    adopted = False
    try:
        handle = provider.start_node(
            allocation, command(w, wl, allocation, rank, ranks, ctx.checkpoint_root)
        )
    except NodeAlreadyStarted as exc:
        if exc.handle is not None:
            handle, adopted = exc.handle, True
        elif isinstance(exc, NodeAlreadyRunning):
            return False  # its supervisor is being born: look again next step
        else:
            ctx.store.record_node_ended(
                w.id, w.attempt, rank, NodeState.LOST, reason=f"unknown earlier run: {exc}"
            )
            return True
    except ProviderError as exc:
        ctx.store.record_node_ended(
            w.id, w.attempt, rank, NodeState.LOST, reason=f"did not start: {exc}"
        )
        ctx.crashpoint("starting")
        return True
    ctx.crashpoint("starting")
    record_started(ctx, w, allocation, rank, handle, adopt=adopted, provider=provider)
    return True


def record_started(
    ctx: JobContext,
    w: WorkloadRecord,
    allocation: Allocation,
    rank: int,
    handle: NodeHandle,
    *,
    adopt: bool,
    provider: Provider,
) -> None:
    """Record the node started (and track it); an adopted run the provider no longer
    has is recorded ``lost``."""
    slot = next((s for s in allocation.nodes if s.rank == rank), None)
    ctx.store.record_node_started(
        w.id,
        w.attempt,
        rank,
        slot.host if slot else "",
        int(handle.extra.get("pid") or 0),
        int(handle.extra.get("start_time") or 0),
        extra=dict(handle.extra),
    )
    ctx.crashpoint("started")
    key = (w.id, w.attempt, rank)
    if not adopt or provider.adopt(handle):
        ctx.tracked.add(key)
    else:
        ctx.store.record_node_ended(
            w.id, w.attempt, rank, NodeState.LOST, reason="gone after a restart"
        )


def resume_starting(
    ctx: JobContext,
    w: WorkloadRecord,
    wl: Workload,
    provider: Provider,
    allocation: Allocation,
    node: NodeRecord,
    ranks: int,
) -> bool:
    """A claimed node whose start is unknown (the previous loop died in between)."""
    if not isinstance(provider, NodeLookup):
        # Cannot tell whether it runs: starting it again could run it twice.
        ctx.store.record_node_ended(
            w.id, w.attempt, node.rank, NodeState.LOST, reason="start unknown after restart"
        )
        return True
    job = str(w.id)
    handle = provider.node_handle(job, w.attempt, node.rank)
    if handle is not None:
        record_started(ctx, w, allocation, node.rank, handle, adopt=True, provider=provider)
        return True
    if provider.node_alive(job, w.attempt, node.rank):
        return False  # its supervisor is being born: look again next step
    return launch(ctx, w, wl, provider, allocation, node.rank, ranks)  # never started


# -- teardown ----------------------------------------------------------------------------
def teardown(ctx: JobContext, w: WorkloadRecord, phase: str) -> bool:
    """Stop every live node of the job (any attempt) and record it ``killed``; True
    when none is left. A node is recorded only after ``kill`` returned (it is gone)."""
    done = True
    for n in ctx.store.nodes(w.id):
        if not n.state.live:
            continue
        provider = ctx.providers.get(n.provider)
        if provider is None:
            log.warning("job %s: provider %s of rank %s not enabled", w.id, n.provider, n.rank)
            done = False
            continue
        if n.state is NodeState.RUNNING:
            handle: NodeHandle | None = handle_of(n)
        elif isinstance(provider, NodeLookup):
            handle = provider.node_handle(str(w.id), n.attempt, n.rank)
            if handle is None and provider.node_alive(str(w.id), n.attempt, n.rank):
                done = False  # its supervisor is being born: look again next step
                continue
        else:
            handle = None  # cannot look: a start that was never confirmed
        reason = phase
        if handle is not None:
            provider.kill(handle)
        else:
            reason = f"{phase}: never started"
        ctx.store.record_node_ended(w.id, n.attempt, n.rank, NodeState.KILLED, reason=reason)
        ctx.tracked.discard((w.id, n.attempt, n.rank))
        ctx.crashpoint(phase)
    return done
