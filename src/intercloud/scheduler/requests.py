"""What the fleet scheduler schedules: gang requests, tenants, and its decisions.

Times are seconds on the caller's clock (the control loop's wall clock or the twin's
simulated clock); nothing in the scheduler reads a clock of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from intercloud.model import SpotPolicy, Topology
from intercloud.scheduler.reasons import ReasonCode


@dataclass(frozen=True, slots=True)
class GangRequest:
    """One job's demand: ``nodes`` nodes with ``gpus_per_node`` GPUs of one of
    ``accelerators`` each (empty: CPU only), all or nothing, within ``topology``.

    ``duration_s`` is the expected run time (backfill uses it; None: unknown, never
    backfilled ahead of a reservation). ``last_checkpoint_s`` is when the job last saved
    its state (preemption prefers victims that lose the least work);
    ``checkpoint_interval_s`` how often it saves it (None: never), so that it may run
    on a pool that ends hard (a Capacity Block) if it can save before the end.
    """

    job_id: int
    tenant: str
    nodes: int
    gpus_per_node: int
    accelerators: tuple[str, ...] = ()
    vcpus_per_node: float = 0.0
    priority: int = 0
    submit_s: float = 0.0
    topology: Topology = Topology.ANY
    spot: SpotPolicy = SpotPolicy.NEVER
    providers: frozenset[str] | None = None
    regions: frozenset[str] | None = None
    provider_preference: tuple[str, ...] = ()
    duration_s: float | None = None
    max_usd_per_hour: float | None = None
    data_provider: str | None = None
    data_region: str | None = None
    data_gb: float = 0.0
    last_checkpoint_s: float | None = None
    preemptible: bool = True
    checkpoint_interval_s: float | None = None

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node


@dataclass(frozen=True, slots=True)
class TenantSpec:
    """A team: fair-share ``weight``, guaranteed GPUs per accelerator type (its quota),
    whether it may borrow idle quota of others (reclaimable), and a monthly USD budget
    (None: unlimited)."""

    name: str
    weight: float = 1.0
    guaranteed_gpus: dict[str, int] = field(default_factory=dict)
    can_borrow: bool = True
    monthly_budget_usd: float | None = None


class DecisionKind(StrEnum):
    PLACE = "place"
    PREEMPT = "preempt"
    HOLD = "hold"
    REJECT = "reject"
    PROVISION = "provision"  # grow an elastic pool
    RELEASE = "release"  # shrink an elastic pool (idle nodes)


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision. PLACE: ``job_id`` on ``node_ids`` of ``pool``; PREEMPT: evict
    ``job_id`` (requeued, not lost) to make room for ``for_job``; HOLD/REJECT: ``reason``
    in the planner's vocabulary; PROVISION/RELEASE: ``count`` nodes of ``pool``.
    ``code`` is the reason's code (HOLD, REJECT and PREEMPT carry one; None otherwise):
    what the control loop acts on."""

    kind: DecisionKind
    job_id: int = -1
    pool: int = -1
    node_ids: tuple[int, ...] = ()
    for_job: int = -1
    count: int = 0
    reason: str = ""
    code: ReasonCode | None = None
