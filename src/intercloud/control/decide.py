"""The decision step of the control loop: which pending jobs to place, and where.

This is the seam where the fleet scheduler plugs in later. Its whole interface is

    decider.decide(pending, offerings, free) -> list[Decision]

a pure function of plain data (no store, no provider, no clock): ``pending`` are the
jobs waiting in PENDING, ``offerings`` what the enabled providers sell, ``free`` their
currently unreserved capacity where a provider can tell (None: unknown, the provider's
``provision`` is the judge). Each job gets exactly one decision, in queue order
(priority descending, then job id: FIFO within a priority):

- ``Place``: run it on ``placement`` as a gang of ``ranks`` nodes;
- ``Hold``: not now (no free capacity); ``reason`` says what it waits for;
- ``Reject``: no enabled provider can ever run it as specified; ``reason`` is in the
  planner's vocabulary (``local: offers no H100:8 (has: CPU only)``).

``PlannerDecider`` is the first implementation: the core planner over the enabled
providers' offerings, greedy in queue order (a held job does not block smaller jobs
behind it: best-effort FIFO, no reservations). It tries the planner's choice, then its
ranked alternatives, and takes the first that fits the free capacity.

``FleetDecider`` (``control.fleet_decider``, the reconciler's default) runs the fleet
scheduler core instead; it is *fleet-aware*: it also gets the jobs holding capacity
(``RunningJob``) and the wall clock, and may answer ``Preempt`` (stop a running job and
requeue it) before the ``Place`` it makes room for. ``INTERCLOUD_DECIDER=planner``
selects ``PlannerDecider``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from intercloud.catalog import Catalog
from intercloud.model import (
    BatchJob,
    Offering,
    Placement,
    PricingKind,
    Service,
    TrainingJob,
    Workload,
)
from intercloud.providers.base import FreeCapacity, OfferingKey
from intercloud.scheduler.planner import Planner
from intercloud.scheduler.reasons import ReasonCode

_NOT_RUNNABLE = ReasonCode.NOT_RUNNABLE


def offering_key(o: Offering | Placement) -> OfferingKey:
    return (o.provider, o.region, o.zone, o.instance_type)


@dataclass(frozen=True, slots=True)
class PendingJob:
    """A job waiting to be placed: its queue position and what it needs."""

    job_id: int
    priority: int
    workload: Workload
    tenant: str = "default"
    submitted_s: float = 0.0  # unix seconds (the record's creation time)


@dataclass(frozen=True, slots=True)
class RunningJob:
    """A job holding capacity (PLACING .. CANCELLING): where it is (the stored
    ``placement``), since when (unix seconds), and whether it may be preempted."""

    job_id: int
    priority: int
    tenant: str
    placement: Mapping[str, Any]
    since_s: float
    duration_s: float | None = None
    preemptible: bool = False
    #: PLACING, waiting in its engine's own queue (``Capability.QUEUE``): it holds a
    #: queue slot, not capacity that runs, so the tenant ledger does not count it and
    #: the scheduler may withdraw it (preemptible) for work of a higher priority
    queued: bool = False


@dataclass(frozen=True, slots=True)
class TenantLimits:
    """A tenant's limits as a fleet-aware decider reads them (plain data; the reconciler
    builds them from the store: ``control.tenancy.load_tenant_limits``).

    ``weight``, ``guarantees`` (GPUs per type), ``can_borrow`` and ``monthly_budget_usd``
    are the scheduler ledger's ``TenantSpec``; ``quotas`` caps the tenant's running GPUs
    per type, borrowed ones included; ``spent_usd`` is this month's spend of its work
    that is *not* among the running jobs (ended attempts): the running jobs' own spend
    is counted from their start by the ledger."""

    name: str
    weight: float = 1.0
    guarantees: Mapping[str, int] = field(default_factory=dict)
    quotas: Mapping[str, int] = field(default_factory=dict)
    can_borrow: bool = True
    monthly_budget_usd: float | None = None
    spent_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class Demand:
    """What one gang reserves: ``ranks`` nodes of the given per-node size."""

    ranks: int
    cpus_per_node: float
    gpus_per_node: int
    memory_gib_per_node: float

    @property
    def cpus(self) -> float:
        return self.ranks * self.cpus_per_node

    @property
    def gpus(self) -> int:
        return self.ranks * self.gpus_per_node

    @property
    def memory_gib(self) -> float:
        return self.ranks * self.memory_gib_per_node


@dataclass(frozen=True, slots=True)
class Place:
    """Run ``job_id`` on ``placement``. ``instances``: on a pool of instances, the
    instance ids to bind, rank 0 first (empty for providers without instance rows)."""

    job_id: int
    placement: Placement
    demand: Demand
    instances: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Hold:
    """Not now: ``reason`` in the user's words, ``code`` what the control loop reads."""

    job_id: int
    reason: str
    code: ReasonCode = ReasonCode.WAITING_FOR_CAPACITY


@dataclass(frozen=True, slots=True)
class Reject:
    """Never here: ``reason`` in the planner's words, ``code`` what the loop reads."""

    job_id: int
    reason: str
    code: ReasonCode = ReasonCode.NEVER_FITS


@dataclass(frozen=True, slots=True)
class Preempt:
    """Stop running job ``job_id`` and requeue it (a new attempt), to make room for
    ``for_job``; comes before the ``Place`` of ``for_job``. ``code`` (one of
    ``REQUEUE_CODES``) is stored with the job, so the requeue survives a crash."""

    job_id: int
    for_job: int
    reason: str
    code: ReasonCode = ReasonCode.PREEMPTED


Decision = Place | Hold | Reject | Preempt


class CapacityReason(StrEnum):
    """Why the fleet grows or shrinks (human text: ``CAPACITY_TEXT``)."""

    GANG_WAITING = "gang_waiting"  # new nodes for a held gang (``for_job``)
    RESERVED_WARM = "reserved_warm"  # a contract's reserved nodes, paid for: keep them up
    IDLE = "idle"  # an elastic node idle for the configured time
    CONTRACT_ENDED = "contract_ended"  # a reserved node whose contract window closed


CAPACITY_TEXT: Mapping[CapacityReason, str] = {
    CapacityReason.GANG_WAITING: "new nodes for job {job}",
    CapacityReason.RESERVED_WARM: "reserved nodes of contract {contract}",
    CapacityReason.IDLE: "idle for {seconds:g} s",
    CapacityReason.CONTRACT_ENDED: "contract {contract} has ended",
}


@dataclass(frozen=True, slots=True)
class Provision:
    """Launch ``count`` instances of ``offering`` at ``pricing`` (``contract``: the
    reserved capacity they use), each at ``usd_per_hour``; ``for_job``: the held gang
    they are for (None: none); ``reason`` says why, ``reason_text`` in words."""

    offering: OfferingKey
    pricing: PricingKind
    count: int
    reason: CapacityReason
    reason_text: str
    contract: str | None = None
    usd_per_hour: float = 0.0
    for_job: int | None = None


@dataclass(frozen=True, slots=True)
class Release:
    """Drain and terminate instances ``instance_ids`` (idle ones), for ``reason``;
    ``versions``: each one's version as the decider saw it (the guard: an instance bound
    to a job since then stays; empty: unguarded)."""

    instance_ids: tuple[int, ...]
    reason: CapacityReason
    reason_text: str
    versions: tuple[int, ...] = ()


CapacityDecision = Provision | Release


class Decider(Protocol):
    """What the control loop asks. Implementations must be pure and deterministic."""

    def decide(
        self,
        pending: Sequence[PendingJob],
        offerings: Sequence[Offering],
        free: Mapping[OfferingKey, FreeCapacity] | None = None,
    ) -> list[Decision]: ...


class FleetAwareDecider(Decider, Protocol):
    """A decider that also sees the jobs holding capacity and the wall clock (the fleet
    scheduler: ``control.fleet_decider``). The reconciler passes them when the decider
    sets ``fleet_aware = True``."""

    fleet_aware: bool

    def decide(
        self,
        pending: Sequence[PendingJob],
        offerings: Sequence[Offering],
        free: Mapping[OfferingKey, FreeCapacity] | None = None,
        *,
        running: Sequence[RunningJob] = (),
        now_s: float = 0.0,
        tenants: Sequence[TenantLimits] | None = None,
    ) -> list[Decision]: ...


def queue_order(pending: Sequence[PendingJob]) -> list[PendingJob]:
    """Priority descending, then job id (FIFO)."""
    return sorted(pending, key=lambda j: (-j.priority, j.job_id))


def demand_of(workload: Workload, placement: Placement) -> Demand:
    """The gang a placement of ``workload`` runs: a training job runs one process per
    placed node; a batch job one per task (``count``), each of ``resources.cpus``. The
    sizes are those of the alternative the placement came from (``Placement.option``)."""
    res = workload.resources.option(placement.option)
    ranks = workload.count if isinstance(workload, BatchJob) else placement.nodes
    return Demand(
        ranks=max(ranks, 1),
        cpus_per_node=res.cpus if res.cpus else 1.0,
        gpus_per_node=placement.accelerator_count,
        memory_gib_per_node=res.memory_gib or 0.0,
    )


def _fits(d: Demand, free: FreeCapacity) -> bool:
    eps = 1e-9
    return (
        d.cpus <= free.cpus + eps and d.gpus <= free.gpus and d.memory_gib <= free.memory_gib + eps
    )


def _hold_reason(d: Demand, key: OfferingKey, free: FreeCapacity) -> str:
    where = "/".join(k for k in key[:3] if k) + f" {key[3]}"
    short = []
    if d.cpus > free.cpus + 1e-9:
        short.append(f"{d.cpus:g} CPUs (free {free.cpus:g})")
    if d.gpus > free.gpus:
        short.append(f"{d.gpus} GPUs (free {free.gpus})")
    if d.memory_gib > free.memory_gib + 1e-9:
        short.append(f"{d.memory_gib:g} GiB (free {free.memory_gib:g})")
    return f"waiting for capacity on {where}: needs {', '.join(short)}"


def plan_or_reject(
    job: PendingJob, planner: Planner | None, enabled: Sequence[str]
) -> tuple[TrainingJob | BatchJob, list[Placement]] | Reject:
    """A job the loop can run and its planned placements (choice first, then the ranked
    alternatives), or why it cannot run here at all."""
    w = job.workload
    if isinstance(w, Service):
        return Reject(job.job_id, "services are not run by the job control loop", _NOT_RUNNABLE)
    if not isinstance(w, TrainingJob | BatchJob) or not w.run:
        return Reject(job.job_id, "the spec has no run command", _NOT_RUNNABLE)
    if planner is None:
        return Reject(job.job_id, "no provider is enabled", ReasonCode.NO_PROVIDER)
    result = planner.plan(w, providers=enabled)
    if result.choice is None:
        why = "; ".join(f"{e.provider}: {e.reason}" for e in result.excluded)
        return Reject(job.job_id, f"no enabled provider can run it ({why})")
    return w, [result.choice, *result.alternatives]


class PlannerCache:
    """One ``Planner`` for the latest offering list: the catalog is indexed once, and
    again only when the enabled providers' offerings change."""

    def __init__(self) -> None:
        self._planner: Planner | None = None
        self._offerings: tuple[Offering, ...] = ()

    def _planner_for(self, offerings: Sequence[Offering]) -> Planner:
        key = tuple(offerings)
        if self._planner is None or key != self._offerings:
            self._planner = Planner(Catalog.from_offerings(key))
            self._offerings = key
        return self._planner


class PlannerDecider(PlannerCache):
    """The core planner over the enabled providers' offerings (see the module docstring)."""

    def decide(
        self,
        pending: Sequence[PendingJob],
        offerings: Sequence[Offering],
        free: Mapping[OfferingKey, FreeCapacity] | None = None,
    ) -> list[Decision]:
        left = dict(free) if free is not None else None
        enabled = sorted({o.provider for o in offerings})
        planner = self._planner_for(offerings) if offerings else None
        out: list[Decision] = []
        for job in queue_order(pending):
            planned = plan_or_reject(job, planner, enabled)
            if isinstance(planned, Reject):
                out.append(planned)
                continue
            w, placements = planned
            hold: str | None = None
            placed: Place | None = None
            for candidate in placements:
                d = demand_of(w, candidate)
                key = offering_key(candidate)
                pool = left.get(key) if left is not None else None
                if pool is None or _fits(d, pool):
                    placed = Place(job.job_id, candidate, d)
                    if left is not None and pool is not None:
                        left[key] = FreeCapacity(
                            pool.cpus - d.cpus, pool.gpus - d.gpus, pool.memory_gib - d.memory_gib
                        )
                    break
                if hold is None:
                    hold = _hold_reason(d, key, pool)
            out.append(placed or Hold(job.job_id, hold or "waiting for capacity"))
        return out
