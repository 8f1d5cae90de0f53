"""Which active jobs and live nodes a loop step looks at (``JobWalk``).

A fleet's step reads thousands of active jobs and tens of thousands of live nodes, and
most jobs are RUNNING with every rank live: nothing to do (``running.quiet``). That is a
function of the job's record and its live nodes, so a job found quiet stays quiet until
one of them changes. The walk keeps the quiet jobs and, from the store's change logs
(``Store.active_workloads_since``, ``Store.live_nodes_since``), hands the step:

- every job but the quiet ones whose record and nodes did not change (PENDING, PLACING
  and the other states are looked at every step, as before);
- for adoption (``nodes.reattach``), the live nodes of the jobs whose nodes changed or
  that a provider stopped tracking (``TrackedNodes.take_dropped``), and of the jobs with
  a running node not adopted yet (retried every step, as before).

When the logs cannot tell (the first step, after ``reset``, a log started afresh, a
step cut short by an error) and every ``full_every`` steps as a safety net, the step
looks at every job and node. Skipping a quiet job changes nothing: its handler is not
called either way, so the step's decisions are those of a walk over everything
(``tests/control/test_job_walk.py`` holds the two to the same writes).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import attrgetter

from intercloud.control.jobs.context import JobContext, TrackedNodes
from intercloud.store import NodeRecord, Store, WorkloadRecord
from intercloud.store.row_image import Cursor

__all__ = ["FULL_EVERY", "JobWalk", "WalkStep"]

#: steps between two walks over everything, whatever the logs say (the safety net)
FULL_EVERY = 100

_WORKLOAD_ID = attrgetter("workload_id")
_NONE: tuple[NodeRecord, ...] = ()  # (shared: handlers take a Sequence, never change it)


@dataclass(slots=True)
class WalkStep:
    """One step's view: ``jobs`` (every active job, by id) and ``nodes`` (every live
    node, by job, attempt, rank) as read; ``full``: every job and node is looked at."""

    jobs: list[WorkloadRecord]
    nodes: list[NodeRecord]
    full: bool
    #: (delta steps) jobs whose record or nodes changed, or whose node lost its tracking
    dirty: set[int] = field(default_factory=set)
    #: (delta steps) jobs that left the active states
    departed: set[int] = field(default_factory=set)
    _by_job: dict[int, list[NodeRecord]] | None = None

    def live(self, job_id: int) -> Sequence[NodeRecord]:
        """The job's live nodes, by attempt and rank."""
        if self.full:
            if self._by_job is None:
                self._by_job = {j: list(g) for j, g in groupby(self.nodes, _WORKLOAD_ID)}
            return self._by_job.get(job_id, _NONE)
        nodes = self.nodes
        lo = bisect_left(nodes, job_id, key=_WORKLOAD_ID)
        hi = bisect_right(nodes, job_id, lo=lo, key=_WORKLOAD_ID)
        return nodes[lo:hi] if hi > lo else _NONE


class JobWalk:
    """The quiet jobs and the change-log cursors, kept across steps (module docstring).
    ``begin`` a step, ``judge`` each RUNNING job looked at, ``finish`` when the jobs
    were walked; a step that does not finish makes the next one look at everything."""

    def __init__(self, full_every: int = FULL_EVERY) -> None:
        self.full_every = full_every
        #: RUNNING jobs with every rank live, as last looked at
        self.quiet: set[int] = set()
        self._jobs_at: Cursor | None = None
        self._nodes_at: Cursor | None = None
        self._next: tuple[Cursor, Cursor] | None = None
        self._since_full = 0
        self._unadopted: set[int] = set()  # jobs with a running node nobody tracks
        #: steps that looked at everything / at the changes only (for tests and stats)
        self.full_walks = 0
        self.delta_walks = 0

    def reset(self) -> None:
        """Forget what was kept (``Reconciler.recover``): the next step looks at all."""
        self._jobs_at = self._nodes_at = self._next = None
        self.quiet = set()
        self._unadopted = set()

    def begin(self, store: Store, tracked: TrackedNodes) -> WalkStep:
        """Read the active jobs and live nodes and say what changed since the last
        finished step."""
        jobs_at, nodes_at = self._jobs_at, self._nodes_at
        self._jobs_at = self._nodes_at = None  # until ``finish``
        jobs, job_changes, jobs_next = store.active_workloads_since(jobs_at)
        nodes, node_changes, nodes_next = store.live_nodes_since(nodes_at)
        self._next = (jobs_next, nodes_next)
        dropped = tracked.take_dropped()
        if (
            job_changes is None
            or node_changes is None
            or self._since_full + 1 >= self.full_every
            or self.full_every <= 1
        ):
            self._since_full = 0
            self.full_walks += 1
            self.quiet = set()
            return WalkStep(jobs, nodes, True)
        self._since_full += 1
        self.delta_walks += 1
        present: dict[int, bool] = {}
        for rec, here in job_changes:
            present[rec.id] = here  # (the last change of a row says where it is)
        dirty = set(present)
        dirty.update(n.workload_id for n, _ in node_changes)
        dirty.update(k[0] for k in dropped)
        dirty |= self._unadopted
        self.quiet -= dirty
        departed = {j for j, here in present.items() if not here}
        return WalkStep(jobs, nodes, False, dirty, departed)

    def to_adopt(self, step: WalkStep) -> Sequence[NodeRecord]:
        """The live nodes to check for adoption: all of them, or those of the jobs
        looked at again (in the order of ``step.nodes``)."""
        if step.full:
            return step.nodes
        return [n for j in sorted(step.dirty) for n in step.live(j)]

    def unadopted(self, job_ids: set[int]) -> None:
        """The jobs left with a running node nobody tracks after the adoption check
        (looked at again next step)."""
        self._unadopted = job_ids

    def forget(self, ctx: JobContext, step: WalkStep) -> None:
        """Drop the per-job caches of the jobs no longer active."""
        if step.full:
            ctx.forget_inactive({w.id for w in step.jobs})
        elif step.departed:
            ctx.forget(step.departed)

    def looks_at(self, job_id: int) -> bool:
        """Whether the step hands the job to its handler (not a quiet, unchanged one)."""
        return job_id not in self.quiet

    def judge(self, job_id: int, quiet: bool) -> None:
        """Record whether a job looked at is quiet (RUNNING, every rank live)."""
        if quiet:
            self.quiet.add(job_id)
        else:
            self.quiet.discard(job_id)

    def finish(self) -> None:
        """The step walked every job it had to: its changes are taken."""
        if self._next is not None:
            self._jobs_at, self._nodes_at = self._next
            self._next = None
