"""``JobContext``: the store, providers and in-memory caches every job handler shares.

Nothing here is needed for correctness after a crash: the caches (parsed specs, tracked
nodes, placement back-offs) are rebuilt from the store and the providers by
``Reconciler.recover()``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from intercloud.control.crashpoints import Crashpoint
from intercloud.control.decide import Decider, PendingJob, RunningJob
from intercloud.model import JobPlacement, Offering, Workload
from intercloud.providers.base import (
    Capability,
    FreeCapacity,
    OfferingKey,
    Provider,
    ProviderError,
)
from intercloud.scheduler.reasons import ReasonCode
from intercloud.store import NodeRecord, Store, WorkloadRecord

if TYPE_CHECKING:
    from intercloud.control.capacity import CapacitySetup

log = logging.getLogger("intercloud.control")

NodeKey = tuple[int, int, int]  # (job, attempt, rank)


class TrackedNodes:
    """The nodes some provider polls for us, a set of ``NodeKey``. It remembers the
    keys dropped since the job walk last took them (``take_dropped``): a running node
    no longer tracked is adopted again by the walk, which otherwise looks only at the
    jobs whose rows changed (``jobs.walk``)."""

    __slots__ = ("_dropped", "_keys")

    def __init__(self) -> None:
        self._keys: set[NodeKey] = set()
        self._dropped: set[NodeKey] = set()

    def add(self, key: NodeKey) -> None:
        self._keys.add(key)

    def discard(self, key: NodeKey) -> None:
        if key in self._keys:
            self._keys.remove(key)
            self._dropped.add(key)

    def clear(self) -> None:
        self._dropped |= self._keys
        self._keys.clear()

    def take_dropped(self) -> set[NodeKey]:
        """The keys dropped since the last call (and forget them)."""
        out, self._dropped = self._dropped, set()
        return out

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[NodeKey]:
        return iter(self._keys)


class JobContext:
    """What the job handlers work with (see ``Reconciler`` for the arguments).

    ``tracked``: the nodes some provider polls for us (their end comes back through
    ``poll``); ``retry_at``/``retries``: the placement back-off of jobs whose
    provisioning was refused (monotonic seconds, per job). Single-writer, not
    thread-safe, like the ``Reconciler`` that owns it.
    """

    def __init__(
        self,
        store: Store,
        providers: Mapping[str, Provider],
        *,
        clock: Callable[[], float],
        crashpoint: Crashpoint,
        decider: Decider,
        retry_backoff_s: tuple[float, float],
        wall_clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.providers = dict(providers)
        self.clock = clock
        self.crashpoint = crashpoint
        self.decider = decider
        self.retry_backoff_s = retry_backoff_s
        self.wall_clock = wall_clock
        self.tracked = TrackedNodes()
        self.workloads: dict[int, Workload | str] = {}
        #: job id -> (the record's version, its stored placement decoded): ``placement``
        self.placements: dict[int, tuple[int, JobPlacement]] = {}
        #: what ``pending.holding`` last read and built: the records, each one's
        #: ``RunningJob`` (None: it holds nothing) and the jobs queued in an engine then
        self.holding_rows: (
            tuple[list[WorkloadRecord], list[RunningJob | None], frozenset[int]] | None
        ) = None
        #: job id -> (its PENDING record, its ``PendingJob``) as ``pending.place`` last
        #: made them; replaced whole by every call
        self.pending_jobs: dict[int, tuple[WorkloadRecord, PendingJob]] = {}
        self.retry_at: dict[int, float] = {}
        self.retries: dict[int, int] = {}
        #: PLACING job -> why it waits in its engine's own queue (``Capability.QUEUE``),
        #: as the PLACING handler last heard; rebuilt by that handler after a restart
        self.queued_ahead: dict[int, str] = {}
        #: reasons to store for such jobs, (id, version, reason, code): written with the
        #: step's holds in one transaction (``pending.place``), not one commit per job
        self.queued_reasons: list[tuple[int, int, str, ReasonCode | None]] = []
        #: instance-backed capacity (``control.live``); None: providers of known capacity
        #: only, the fleet decider sizes the others to fit
        self.capacity: CapacitySetup | None = None
        #: config ``checkpoint_dir``: checkpoints every provider's nodes reach (None:
        #: each provider keeps them, an instance's die with it)
        self.checkpoint_root: str | None = None
        #: config ``failover.down_after_s``: a provider failing every call this long
        #: is down
        self.down_after_s: float = 300.0
        #: provider -> why its last ``poll`` failed or it was unreachable (None: it
        #: answered); ``nodes.observe`` keeps it
        self.poll_errors: dict[str, str | None] = {}
        self._offerings: dict[str, list[Offering]] = {}  # last good answer per provider
        self._offering_errors: dict[str, str] = {}  # provider -> its last failure

    def reset(self) -> None:
        """Forget every cache (a recovering loop rebuilds them)."""
        self.tracked.clear()
        self.workloads.clear()
        self.placements.clear()
        self.holding_rows = None
        self.pending_jobs = {}
        self.retry_at.clear()
        self.retries.clear()
        self.queued_ahead.clear()
        self.queued_reasons = []

    def holding_jobs(self) -> list[tuple[WorkloadRecord, RunningJob]]:
        """The jobs ``pending.holding`` last found holding capacity, with their records,
        by id."""
        if self.holding_rows is None:
            return []
        rows, jobs, _ = self.holding_rows
        return [(w, job) for w, job in zip(rows, jobs, strict=True) if job is not None]

    def now(self) -> datetime:
        """``wall_clock`` as a UTC datetime."""
        return datetime.fromtimestamp(self.wall_clock(), UTC)

    def forget_inactive(self, active: set[int]) -> None:
        """Drop the per-job caches of jobs that are no longer active."""
        caches = (self.workloads, self.placements, self.retry_at, self.retries, self.queued_ahead)
        for cache in caches:
            for job_id in [j for j in cache if j not in active]:
                del cache[job_id]

    def forget(self, job_ids: set[int]) -> None:
        """Drop the per-job caches of ``job_ids`` (jobs that left the active states)."""
        caches = (self.workloads, self.placements, self.retry_at, self.retries, self.queued_ahead)
        for cache in caches:
            for job_id in job_ids:
                cache.pop(job_id, None)

    def placement(self, w: WorkloadRecord) -> JobPlacement:
        """``allocation.job_placement(w)``, decoded once per version of the record (a
        placement changes only with the record, and every write bumps the version)."""
        hit = self.placements.get(w.id)
        if hit is not None and hit[0] == w.version:
            return hit[1]
        jp = JobPlacement.from_stored(w.placement or {})
        self.placements[w.id] = (w.version, jp)
        return jp

    def workload(self, w: WorkloadRecord) -> Workload | str:
        """The job's parsed spec (cached), or why it does not parse."""
        cached = self.workloads.get(w.id)
        if cached is None:
            from intercloud.specs import SpecError, load_spec_text

            try:
                cached = load_spec_text(w.spec_text, source=f"job {w.id}").workload
            except SpecError as exc:
                cached = f"invalid spec: {exc}"
            self.workloads[w.id] = cached
        return cached

    def offerings(self) -> list[Offering]:
        """Every offering of every enabled provider. A provider whose call fails counts
        with its last good answer (so its pools, and the jobs pinned to it, stay known
        while it is away); the failure is logged."""
        out: list[Offering] = []
        for name, p in self.providers.items():
            try:
                got = p.offerings()
            except ProviderError as exc:
                text = " ".join(str(exc).split())
                if self._offering_errors.get(name) != text:  # once per streak, not per step
                    log.warning("offerings of %s: %s (using its last answer)", name, text)
                self._offering_errors[name] = text
                got = self._offerings.get(name, [])
            else:
                if self._offering_errors.pop(name, None) is not None:
                    log.info("offerings of %s: answered again", name)
                self._offerings[name] = got
            out.extend(got)
        return out

    def free_capacity(self) -> dict[OfferingKey, FreeCapacity] | None:
        """Free capacity per offering, for the providers that can tell."""
        free: dict[OfferingKey, FreeCapacity] = {}
        for p in self.providers.values():
            free.update(p.free_capacity() or {})
        return free or None

    def queue_capacity(self) -> dict[OfferingKey, FreeCapacity]:
        """What the providers that keep their own queue (``Capability.QUEUE``) may take
        beyond their free capacity, per offering."""
        out: dict[OfferingKey, FreeCapacity] = {}
        for p in self.providers.values():
            if p.supports(Capability.QUEUE):
                out.update(p.queue_capacity())
        return out


#: A per-state handler: one step of job ``w`` (the record this step read) given its live
#: nodes (any attempt); True if anything changed. Provider failures raise
#: ``ProviderError`` (the step logs it and retries later); store failures propagate.
JobHandler = Callable[[JobContext, WorkloadRecord, Sequence[NodeRecord]], bool]
