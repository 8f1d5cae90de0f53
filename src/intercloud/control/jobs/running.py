"""RUNNING: every rank exited 0 -> SUCCEEDED (release, end attempt first); a rank exited
non-zero or was lost -> RECOVERING (``recovering.fail``)."""

from __future__ import annotations

from collections.abc import Sequence

from intercloud.control.jobs.allocation import release
from intercloud.control.jobs.context import JobContext
from intercloud.control.jobs.nodes import outcome
from intercloud.control.jobs.recovering import fail
from intercloud.control.states import JobState
from intercloud.store import NodeRecord, WorkloadRecord

S = JobState


def quiet(ctx: JobContext, w: WorkloadRecord, live: Sequence[NodeRecord]) -> bool:
    """Whether every rank of the job's attempt is live (``live``: its live nodes by
    attempt, then rank, as ``Store.live_nodes`` lists them): then ``handle`` has nothing
    to do. O(1): in that order, when the last ``ranks`` nodes start and end with the
    job's attempt, they all are of it."""
    ranks = ctx.placement(w).ranks
    if ranks <= 0:
        return True
    a = w.attempt
    return len(live) >= ranks and live[-ranks].attempt == a and live[-1].attempt == a


def handle(ctx: JobContext, w: WorkloadRecord, live: Sequence[NodeRecord]) -> bool:
    """The RUNNING handler (``JobHandler``): nothing to do while every rank of the
    attempt is live; else decide from the attempt's node records."""
    ranks = ctx.placement(w).ranks
    if sum(1 for n in live if n.attempt == w.attempt) >= ranks:
        return False
    out = outcome(ctx.store.nodes(w.id, w.attempt), ranks)
    if out.failed_rank is not None:
        return fail(ctx, w, out)
    if not out.succeeded:
        return False
    release(ctx, w)
    ctx.crashpoint("finishing")
    rec = ctx.store.finish_attempt(  # the move and the attempt's end, one commit
        w.id,
        w.attempt,
        "succeeded",
        S.RUNNING,
        S.SUCCEEDED,
        f"all {ranks} node(s) exited 0",
        expected_version=w.version,
        exit_code=0,
    )
    if rec is not None:
        ctx.crashpoint("finishing")
    return True
