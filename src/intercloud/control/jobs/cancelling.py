"""Cancellation (``desired = cancel``), whatever state the job is in:

PENDING -> CANCELLED; PLACING -> CANCELLED (releases first: provision may have run);
others -> CANCELLING --kill, release, end attempt--> CANCELLED
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from intercloud.control.jobs.allocation import release
from intercloud.control.jobs.context import JobContext
from intercloud.control.jobs.nodes import teardown
from intercloud.control.states import JobState
from intercloud.scheduler.reasons import ReasonCode
from intercloud.store import InvalidRequest, NodeRecord, WorkloadRecord

S = JobState
_CANCELLED = ReasonCode.CANCELLED


def cancel(ctx: JobContext, w: WorkloadRecord) -> bool:
    """One cancelling step of a job whose cancel was requested (or that is CANCELLING)."""
    if w.state is S.PENDING:
        rec = ctx.store.transition(
            w.id, S.PENDING, S.CANCELLED, "cancelled before placement", reason_code=_CANCELLED
        )
    elif w.state is S.PLACING:
        release(ctx, w)  # provision may have run before the loop died
        ctx.crashpoint("cancelling")
        rec = ctx.store.transition(
            w.id, S.PLACING, S.CANCELLED, "cancelled while placing", reason_code=_CANCELLED
        )
    elif w.state is S.CANCELLING:
        return finish(ctx, w)
    else:
        rec = ctx.store.transition(
            w.id, w.state, S.CANCELLING, "cancel requested", reason_code=_CANCELLED
        )
        if rec is not None:
            ctx.crashpoint("cancelling")
            finish(ctx, rec)
            return True
    if rec is not None:
        ctx.crashpoint("cancelling")
    return rec is not None


def finish(ctx: JobContext, w: WorkloadRecord) -> bool:
    """CANCELLING: stop every node, release, end the attempt -> CANCELLED."""
    if not teardown(ctx, w, "cancelling"):
        return False
    release(ctx, w)
    ctx.crashpoint("cancelling")
    if w.attempt > 0:
        with contextlib.suppress(InvalidRequest):  # cancelled before it was begun
            ctx.store.end_attempt(w.id, w.attempt, "cancelled", reason="cancel requested")
    rec = ctx.store.transition(
        w.id, S.CANCELLING, S.CANCELLED, "cancelled: all nodes stopped", reason_code=_CANCELLED
    )
    if rec is not None:
        ctx.crashpoint("cancelling")
    return True


def handle(ctx: JobContext, w: WorkloadRecord, live: Sequence[NodeRecord]) -> bool:
    """The cancel handler (``JobHandler``): any job with ``desired = cancel``, and
    CANCELLING."""
    return cancel(ctx, w)
