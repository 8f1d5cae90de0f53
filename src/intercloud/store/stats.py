"""Counts and stretches the dashboard and ``/metrics`` read from the store, each one
grouped query (the tenant filter, where there is one, is in the query itself).

- ``queue_counts``: unfinished jobs by tenant, state and reason code;
- ``instance_counts``: instances by provider and state;
- ``workload_counts``: every job ever submitted, by tenant and state;
- ``placements_after``: the loop's placements (PENDING -> PLACING transitions) after an
  event id, each with how long the job had waited since it last became PENDING;
- ``running_stretches``: every attempt that ran in a time window, with its placement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from intercloud.control.states import TERMINAL, JobState
from intercloud.store.repository import Store
from intercloud.store.tables import (
    AttemptModel,
    EventModel,
    InstanceModel,
    TenantModel,
    WorkloadModel,
)

IM, E, W, A, T = InstanceModel, EventModel, WorkloadModel, AttemptModel, TenantModel
_UNFINISHED = [s.value for s in JobState if s not in TERMINAL]


def queue_counts(store: Store, tenant: str | None = None) -> dict[tuple[str, str, str], int]:
    """``{(tenant, state, reason_code or "none"): jobs}`` of the unfinished jobs."""
    q = (
        sa.select(T.name, W.state, W.reason_code, sa.func.count())
        .join(T, T.id == W.tenant_id)
        .where(W.state.in_(_UNFINISHED))
        .group_by(T.name, W.state, W.reason_code)
    )
    if tenant is not None:
        q = q.where(T.name == tenant)
    with store._db.read() as conn:  # a reader of the store's own tables
        return {(str(t), str(s), str(r or "none")): int(n) for t, s, r, n in conn.execute(q)}


def workload_counts(store: Store) -> dict[tuple[str, str], int]:
    """``{(tenant, state): jobs}`` over every job the store holds."""
    q = (
        sa.select(T.name, W.state, sa.func.count())
        .join(T, T.id == W.tenant_id)
        .group_by(T.name, W.state)
    )
    with store._db.read() as conn:
        return {(str(t), str(s)): int(n) for t, s, n in conn.execute(q)}


def instance_counts(store: Store) -> dict[tuple[str, str], int]:
    """``{(provider, state): instances}`` over every instance row."""
    q = sa.select(IM.provider, IM.state, sa.func.count()).group_by(IM.provider, IM.state)
    with store._db.read() as conn:
        return {(str(p), str(s)): int(n) for p, s, n in conn.execute(q)}


@dataclass(frozen=True)
class Placement:
    event_id: int
    tenant: str
    waited_s: float


def placements_after(store: Store, event_id: int, limit: int = 10_000) -> list[Placement]:
    """The PENDING -> PLACING transitions with an id above ``event_id`` (oldest first, at
    most ``limit``), each with the time since the job last entered PENDING."""
    entered = sa.orm.aliased(E)
    since = (
        sa.select(sa.func.max(entered.time))
        .where(
            entered.workload_id == E.workload_id,
            entered.to_state == JobState.PENDING.value,
            entered.id < E.id,
        )
        .scalar_subquery()
    )
    q = (
        sa.select(E.id, E.time, since, W.created_at, T.name)
        .join(W, W.id == E.workload_id)
        .join(T, T.id == W.tenant_id)
        .where(
            E.id > event_id,
            E.kind == "transition",
            E.from_state == JobState.PENDING.value,
            E.to_state == JobState.PLACING.value,
        )
        .order_by(E.id)
        .limit(limit)
    )
    with store._db.read() as conn:
        rows = list(conn.execute(q))
    out = []
    for eid, at, pending_at, created, tenant in rows:
        start: datetime = pending_at or created
        out.append(Placement(int(eid), str(tenant), max(0.0, (at - start).total_seconds())))
    return out


@dataclass(frozen=True)
class Stretch:
    """One attempt's run: ``[start, end)`` (``end`` None: still running) at its job's
    placement."""

    workload_id: int
    tenant: str
    start: datetime
    end: datetime | None
    provider: str
    region: str
    accelerator: str | None
    gpus: int
    nodes: int


def running_stretches(store: Store, since: datetime, tenant: str | None = None) -> list[Stretch]:
    """Attempts of placed jobs that ran at some time after ``since`` (only ``tenant``'s
    when given), by start."""
    q = (
        sa.select(A.workload_id, T.name, A.started_at, A.ended_at, W.finished_at, W.placement)
        .join(W, W.id == A.workload_id)
        .join(T, T.id == W.tenant_id)
        .where(
            W.placement.is_not(None),
            sa.or_(A.ended_at.is_(None), A.ended_at > since),
            sa.or_(W.finished_at.is_(None), W.finished_at > since),
        )
        .order_by(A.started_at, A.id)
    )
    if tenant is not None:
        q = q.where(T.name == tenant)
    with store._db.read() as conn:
        rows = list(conn.execute(q))
    out = []
    for wid, name, start, ended, finished, placement in rows:
        pl: dict[str, Any] = placement or {}
        nodes = int(pl.get("nodes") or 1)
        out.append(
            Stretch(
                int(wid),
                str(name),
                start,
                ended or finished,
                str(pl.get("provider") or "?"),
                str(pl.get("region") or "?"),
                str(pl["accelerator"]) if pl.get("accelerator") else None,
                int(pl.get("accelerator_count") or 0) * nodes,
                nodes,
            )
        )
    return out


@dataclass(frozen=True)
class InstanceStretch:
    """One instance's running time ``[start, end)`` (``end`` None: still up)."""

    start: datetime
    end: datetime | None
    provider: str
    region: str
    instance_type: str


def instance_stretches(store: Store, since: datetime) -> list[InstanceStretch]:
    """Instances that ran at some time after ``since`` (the fleet's capacity), by start."""
    q = (
        sa.select(IM.running_at, IM.ended_at, IM.provider, IM.region, IM.instance_type)
        .where(IM.running_at.is_not(None), sa.or_(IM.ended_at.is_(None), IM.ended_at > since))
        .order_by(IM.running_at, IM.id)
    )
    with store._db.read() as conn:
        return [
            InstanceStretch(start, end, str(p), str(r), str(t))
            for start, end, p, r, t in conn.execute(q)
            if start is not None
        ]
