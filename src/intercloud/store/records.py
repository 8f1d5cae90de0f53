"""Plain, immutable views of stored rows: what the store hands to the rest of intercloud.

No SQLAlchemy object leaves ``intercloud.store``; callers get these frozen dataclasses.
Times are timezone-aware UTC datetimes. JSON columns come back as plain dicts (do not
mutate them: they are snapshots, and changing them changes nothing stored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from intercloud.control.states import JobState
from intercloud.scheduler.reasons import ReasonCode


class WorkloadKind(StrEnum):
    TRAINING = "training"
    SERVICE = "service"
    BATCH = "batch"


class SpecFormat(StrEnum):
    INTERCLOUD = "intercloud"
    SKYPILOT = "skypilot"


class Desired(StrEnum):
    """What the user wants: keep it running, or cancel it."""

    RUN = "run"
    CANCEL = "cancel"


class NodeState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    EXITED = "exited"
    LOST = "lost"
    KILLED = "killed"

    @property
    def live(self) -> bool:
        return self in (NodeState.STARTING, NodeState.RUNNING)


LIVE_NODE_STATES: frozenset[NodeState] = frozenset({NodeState.STARTING, NodeState.RUNNING})


@dataclass(frozen=True, slots=True)
class TenantRecord:
    """A tenant and its limits, as the scheduler's tenant ledger reads them.

    ``weight``: fair-share weight (> 0). ``guarantees``: GPUs per canonical GPU type the
    tenant is guaranteed (its own work there is never refused for quota, and borrowed work
    of others is reclaimed for it). ``can_borrow``: whether it may run beyond its
    guarantees on idle GPUs (that work is reclaimable). ``quotas``: at most this many of
    its GPUs of a type run at once, borrowed ones included. ``monthly_budget_usd``: USD
    per UTC calendar month (None: unlimited). Empty maps mean no limit. ``version`` grows
    with every change; ``updated_at`` is the latest change (``created_at`` at first).
    """

    id: int
    name: str
    created_at: datetime
    weight: float = 1.0
    guarantees: dict[str, int] = field(default_factory=dict)
    quotas: dict[str, int] = field(default_factory=dict)
    can_borrow: bool = True
    monthly_budget_usd: float | None = None
    version: int = 1
    updated_at: datetime | None = None
    #: The quotas an admin gave, within which a tenant-admin sets ``quotas`` (None:
    #: no admin has set quotas since ceilings exist; the current quotas are the ceiling).
    quota_ceiling: dict[str, int] | None = None

    def ceiling(self) -> dict[str, int]:
        """What a tenant-admin may set ``quotas`` within."""
        return dict(self.quotas if self.quota_ceiling is None else self.quota_ceiling)


@dataclass(frozen=True, slots=True)
class TenantUsage:
    """What a tenant uses now and has spent this month, as far as the store can tell.

    ``running_gpus``: GPUs per type held by its jobs that hold capacity (placed,
    provisioning, running, recovering, cancelling). ``spent_closed_usd``: the estimated
    cost this UTC month of its attempts that have ended (or whose job has finished);
    ``spent_open_usd``: the same for attempts still going, up to ``now``. Estimates: each
    attempt costs its job's placement ``hourly_usd`` for the part of
    ``[started_at, ended_at or now)`` inside the month (see ``Store.tenant_usage``).
    """

    running_gpus: dict[str, int] = field(default_factory=dict)
    spent_closed_usd: float = 0.0
    spent_open_usd: float = 0.0

    @property
    def spent_usd(self) -> float:
        return self.spent_closed_usd + self.spent_open_usd


@dataclass(frozen=True, slots=True)
class WorkloadRecord:
    """One workload as stored.

    ``version`` grows by one on every change; pass it back as ``expected_version`` to
    make an update conditional on nobody having changed the row since it was read.
    ``attempt`` is the current attempt number (0 before the first), ``restarts`` how
    many restarts have been used of ``max_restarts``. ``reason`` is the reason given
    with the latest transition (or set by ``set_fields``), ``reason_code`` its code (None:
    none was given, or a code this version does not know). ``submission`` is the
    submission context (``Store.submit``): it may hold the submitter's environment values,
    so show only its names to users.
    """

    id: int
    tenant: str
    name: str
    kind: WorkloadKind
    spec_text: str
    spec_format: SpecFormat
    state: JobState
    desired: Desired
    priority: int
    attempt: int
    restarts: int
    max_restarts: int
    placement: dict[str, Any] | None
    reason: str | None
    exit_code: int | None
    version: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    submission: dict[str, Any] | None = None
    reason_code: ReasonCode | None = None


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt at running a workload: where it was allocated and how it ended.

    ``state`` is free-form text chosen by the control loop (``active`` while running).
    """

    workload_id: int
    attempt: int
    allocation: dict[str, Any] | None
    state: str
    reason: str | None
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """One node (gang member, rank) of one attempt.

    ``host``/``pid``/``start_time`` identify the process once started: ``start_time``
    (process start ticks) tells a reused pid from the original after a restart.
    """

    id: int
    workload_id: int
    attempt: int
    rank: int
    provider: str
    host: str | None
    pid: int | None
    start_time: int | None
    state: NodeState
    exit_code: int | None
    started_at: datetime
    ended_at: datetime | None
    extra: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One entry of the append-only history. ``id`` orders events globally."""

    id: int
    workload_id: int | None
    time: datetime
    kind: str
    from_state: str | None
    to_state: str | None
    reason: str | None
    data: dict[str, Any] | None
    instance_id: int | None = None


class AssignmentState(StrEnum):
    """How the node agent of an instance stands with its assignment."""

    ASSIGNED = "assigned"  # written by the control loop, not yet picked up
    STARTED = "started"  # the agent runs it
    EXITED = "exited"  # finished; ``exit_code`` says how
    KILLED = "killed"  # stopped on request (or never started and given up)


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """One instance as stored (``tables.InstanceModel`` says what each field means).

    ``state`` is a ``providers.contract.InstanceState`` value; ``pricing`` a
    ``model.PricingKind`` value. ``workload_id``/``attempt``/``rank`` are None while the
    instance is idle in its pool.
    """

    id: int
    request_id: str
    slot: int
    provider: str
    region: str
    zone: str
    instance_type: str
    pricing: str
    contract: str | None
    usd_per_hour: float
    state: str
    provider_instance_id: str | None
    address: str | None
    workload_id: int | None
    attempt: int | None
    rank: int | None
    assignment: dict[str, Any] | None
    assignment_state: AssignmentState | None
    exit_code: int | None
    secret_hash: str | None
    failure_kind: str | None
    reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    running_at: datetime | None
    idle_since: datetime | None
    heartbeat_at: datetime | None
    ended_at: datetime | None
    extra: dict[str, Any] | None

    @property
    def offering(self) -> tuple[str, str, str, str]:
        """``(provider, region, zone, instance_type)``: ``providers.base.OfferingKey``."""
        return (self.provider, self.region, self.zone, self.instance_type)

    @property
    def idle(self) -> bool:
        return self.workload_id is None


@dataclass(frozen=True, slots=True)
class OfferingBlock:
    """A cool-down on one offering (``tables.OfferingBlockModel``)."""

    provider: str
    region: str
    zone: str
    instance_type: str
    pricing: str
    kind: str
    reason: str | None
    failures: int
    until: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ProviderHealth:
    """How one provider's calls have gone (``tables.ProviderHealthModel``)."""

    name: str
    last_ok_at: datetime | None
    last_error_at: datetime | None
    first_error_at: datetime | None
    error: str | None
    error_kind: str | None
    down_since: datetime | None
    updated_at: datetime

    @property
    def down(self) -> bool:
        return self.down_since is not None


class Role(StrEnum):
    """What an API token may do (``intercloud.api.roles`` has the rules)."""

    ADMIN = "admin"
    TENANT_ADMIN = "tenant-admin"
    MEMBER = "member"
    VIEWER = "viewer"


@dataclass(frozen=True, slots=True)
class ApiTokenRecord:
    """An API token without its secret (only ``secret_hash`` is stored). ``live`` at a
    time: not revoked and not expired."""

    id: int
    tenant: str
    role: Role
    name: str
    prefix: str
    created_at: datetime
    created_by: int | None
    expires_at: datetime | None
    revoked_at: datetime | None

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One mutating API call (``tables.AuditModel``)."""

    id: int
    time: datetime
    token_id: int | None
    tenant: str | None
    role: str | None
    method: str
    path: str
    target: str | None
    status: int
    code: str | None
    client: str | None


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """A named lease (``tables.LeaseModel``); ``held(now)``: not expired at ``now``."""

    name: str
    holder: str
    epoch: int
    acquired_at: datetime
    expires_at: datetime

    def held(self, now: datetime) -> bool:
        return now < self.expires_at
