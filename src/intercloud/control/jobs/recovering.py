"""RECOVERING: stop what is left of the attempt, then restart it or fail the job.

    RUNNING/PROVISIONING --a rank exited non-zero or was lost--> RECOVERING (exit code kept)
    RECOVERING --kill every live node, release, end attempt--> PENDING (attempt + 1,
                 restarts + 1) if the restart policy allows, else FAILED

A job RECOVERING because the scheduler stopped it (its stored ``reason_code`` is one of
``REQUEUE_CODES``: preempted, reclaimed, ...) is requeued as a new attempt whatever its
restart policy, without counting a restart; the code is stored with the transition, so
this survives a crash.

Restart policy: the store's ``max_restarts`` (the submitter copies it from the spec's
``restart.max_restarts``) bounds ``restarts``; a node that exited non-zero is restarted
only if its exit code is in the spec's ``restart.on_exit_codes`` (empty: any); a lost
node (no exit code) is always restartable while restarts are left.
"""

from __future__ import annotations

from collections.abc import Sequence

from intercloud.control.jobs.allocation import release
from intercloud.control.jobs.context import JobContext
from intercloud.control.jobs.nodes import Outcome, teardown
from intercloud.control.states import JobState
from intercloud.model import BatchJob, TrainingJob
from intercloud.scheduler.reasons import REQUEUE_CODES, ReasonCode, reason_text
from intercloud.store import NodeRecord, WorkloadRecord

S = JobState


def preempted(w: WorkloadRecord) -> bool:
    """Whether the job is RECOVERING because the scheduler stopped it to requeue it (the
    code of that transition is stored with the job, so this survives a crash)."""
    return w.reason_code in REQUEUE_CODES


def may_restart(ctx: JobContext, w: WorkloadRecord, exit_code: int | None) -> tuple[bool, str]:
    """Whether the restart policy allows another attempt, and the words saying why."""
    if w.restarts >= w.max_restarts:
        return False, f"no restarts left ({w.restarts} of {w.max_restarts} used)"
    wl = ctx.workload(w)
    codes = wl.restart.on_exit_codes if isinstance(wl, TrainingJob | BatchJob) else ()
    if exit_code is not None and codes and exit_code not in codes:
        listed = ", ".join(map(str, codes))
        return False, f"exit code {exit_code} is not in restart.on_exit_codes ({listed})"
    return True, f"restart {w.restarts + 1} of {w.max_restarts}"


def fail(ctx: JobContext, w: WorkloadRecord, out: Outcome) -> bool:
    """A rank failed: ``w.state`` -> RECOVERING (the verdict in the reason), then one
    recovering step at once."""
    _, verdict = may_restart(ctx, w, out.exit_code)
    rec = ctx.store.transition(
        w.id,
        w.state,
        S.RECOVERING,
        f"{out.why}; {verdict}",
        expected_version=w.version,
        exit_code=out.exit_code,
    )
    if rec is None:
        return False
    ctx.crashpoint("recovering")
    recover(ctx, rec)
    return True


def recover(ctx: JobContext, w: WorkloadRecord) -> bool:
    """RECOVERING: stop what is left of the attempt, then restart or fail."""
    if not teardown(ctx, w, "recovering"):
        return False
    release(ctx, w)
    ctx.crashpoint("recovering")
    was_preempted = preempted(w)
    ended = "preempted" if was_preempted else "failed"
    ctx.store.end_attempt(w.id, w.attempt, ended, reason=w.reason)
    ctx.crashpoint("recovering")
    restart, _ = (True, "") if was_preempted else may_restart(ctx, w, w.exit_code)
    if restart:
        if was_preempted:
            code = w.reason_code or ReasonCode.PREEMPTED
            reason = w.reason or reason_text(code)
        else:
            code, reason = ReasonCode.RESTART, f"restarting as attempt {w.attempt + 1}"
        rec = ctx.store.transition(
            w.id,
            S.RECOVERING,
            S.PENDING,
            reason,
            expected_version=w.version,
            reason_code=code,
            attempt=w.attempt + 1,
            restarts=w.restarts if was_preempted else w.restarts + 1,
            placement=None,
        )
    else:
        rec = ctx.store.transition(
            w.id,
            S.RECOVERING,
            S.FAILED,
            w.reason,
            expected_version=w.version,
            reason_code=w.reason_code,
        )
    if rec is not None:
        ctx.crashpoint("recovering")
    return True


def handle(ctx: JobContext, w: WorkloadRecord, live: Sequence[NodeRecord]) -> bool:
    """The RECOVERING handler (``JobHandler``)."""
    return recover(ctx, w)
