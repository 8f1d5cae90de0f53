"""PLACING: reserve the placement's nodes (``try_provision``, idempotent by request id
``{job}-a{attempt}``) -> PROVISIONING, then start them at once (``provisioning.start``);
while the provider is still bringing them up, the job stays PLACING and is asked again
on the next step (a provider that queues, as Slurm, never blocks the loop).
A refusal (``CapacityError``, an offering no longer sold, a provider not enabled) ->
PENDING with the reason, placed again after a growing back-off."""

from __future__ import annotations

from collections.abc import Sequence

from intercloud.control.jobs.allocation import allocation_dict, request
from intercloud.control.jobs.context import JobContext
from intercloud.control.jobs.provisioning import start
from intercloud.control.states import JobState
from intercloud.providers.base import Capability, CapacityError, Provider, ProviderError
from intercloud.scheduler.reasons import ReasonCode
from intercloud.store import NodeRecord, WorkloadRecord

S = JobState


def provision(ctx: JobContext, w: WorkloadRecord) -> bool:
    """PLACING: reserve the nodes (idempotent by request id) -> PROVISIONING."""
    try:
        provider, req = request(ctx, w)
        allocation = provider.try_provision(req)
    except (CapacityError, ProviderError) as exc:
        return back_to_pending(ctx, w, f"waiting for capacity: {exc}")
    if allocation is None:
        # still being brought up: asked again next step, with no back-off, and counted
        # as a change so the loop keeps its shortest pause until the gang runs
        _note_queued(ctx, w, provider, req.request_id)
        return True
    ctx.queued_ahead.pop(w.id, None)
    ctx.crashpoint("provisioning")
    rec = ctx.store.start_attempt(  # the move and the attempt, one commit
        w.id,
        w.attempt,
        allocation_dict(allocation),
        S.PLACING,
        S.PROVISIONING,
        f"allocated {allocation.allocation_id} on {allocation.provider}",
        expected_version=w.version,
    )
    if rec is None:
        return True
    ctx.crashpoint("provisioning")
    start(ctx, rec, provider, allocation, fresh=True)
    return True


def _note_queued(ctx: JobContext, w: WorkloadRecord, provider: Provider, rid: str) -> None:
    """Remember (and show as the job's reason) whether its gang waits in its engine's
    own queue: such a gang holds a queue slot, not running capacity (``holding``)."""
    why = provider.queued(rid) if provider.supports(Capability.QUEUE) else None
    if why is None:
        ctx.queued_ahead.pop(w.id, None)
        return
    ctx.queued_ahead[w.id] = why
    if w.reason != why:
        ctx.queued_reasons.append((w.id, w.version, why, ReasonCode.WAITING_FOR_CAPACITY))


def withdraw(ctx: JobContext, w: WorkloadRecord, reason: str, code: ReasonCode) -> bool:
    """PLACING -> PENDING for a gang that waits in its engine's queue, once the engine
    has taken it back (nothing of it ran); placed again at once, without back-off. A
    gang that started meanwhile is left to run (False)."""
    provider, req = request(ctx, w)
    if not provider.withdraw(req.request_id):
        return False
    ctx.queued_ahead.pop(w.id, None)
    why = f"withdrawn from the queue of {provider.name}: {reason}"
    rec = ctx.store.transition(
        w.id, S.PLACING, S.PENDING, why, expected_version=w.version, reason_code=code
    )
    ctx.crashpoint("placing")
    return rec is not None


def back_to_pending(ctx: JobContext, w: WorkloadRecord, reason: str) -> bool:
    """PLACING -> PENDING with ``reason``; the job is not placed again before its
    back-off (``retry_backoff_s``: first, doubled per refusal, capped) has passed."""
    n = ctx.retries.get(w.id, 0)
    ctx.retries[w.id] = n + 1
    first, cap = ctx.retry_backoff_s
    ctx.retry_at[w.id] = ctx.clock() + min(cap, first * 2**n)
    rec = ctx.store.transition(
        w.id,
        S.PLACING,
        S.PENDING,
        reason,
        expected_version=w.version,
        reason_code=ReasonCode.CAPACITY_REFUSED,
    )
    ctx.crashpoint("placing")
    return rec is not None


def handle(ctx: JobContext, w: WorkloadRecord, live: Sequence[NodeRecord]) -> bool:
    """The PLACING handler (``JobHandler``)."""
    return provision(ctx, w)
