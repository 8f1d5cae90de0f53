"""Plain, immutable views of stored rows: what the store hands to the rest of intercloud.

No SQLAlchemy object leaves ``intercloud.store``; callers get these frozen dataclasses.
Times are timezone-aware UTC datetimes. JSON columns come back as plain dicts (do not
mutate them: they are snapshots, and changing them changes nothing stored).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from intercloud.control.states import JobState


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
    id: int
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class WorkloadRecord:
    """One workload as stored.

    ``version`` grows by one on every change; pass it back as ``expected_version`` to
    make an update conditional on nobody having changed the row since it was read.
    ``attempt`` is the current attempt number (0 before the first), ``restarts`` how
    many restarts have been used of ``max_restarts``. ``reason`` is the reason given
    with the latest transition (or set by ``set_fields``). ``submission`` is the
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
