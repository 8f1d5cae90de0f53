"""The capacity the store records as used, as ``UsageInterval`` values for the ledger
(``contracts/ledger.py``).

- Instances (instance-backed providers): each instance that ran gives its running time
  ``[running_at, ended_at or at)``, cut at every bind and release (the instance's
  ``events`` rows written by ``bind_instances``/``unbind_instances``: no state change,
  data ``{attempt, rank}``). Bound stretches belong to the bound workload's tenant,
  the rest to none (idle: the ledger's ``UNASSIGNED``).
- Job-level providers (those with no instance rows: local, slurm, ray): each attempt
  runs ``[started_at, ended_at, else its job's finished_at, else at)`` at its job's
  current placement (``hourly_usd`` for the whole gang, ``pricing``, region, instance
  type): the same estimate as ``Store.tenant_usage``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from intercloud.model.pricing import PricingKind
from intercloud.model.usage import UsageInterval
from intercloud.store.repository import Store
from intercloud.store.tables import (
    AttemptModel,
    EventModel,
    InstanceModel,
    TenantModel,
    WorkloadModel,
)

IM, E, W, A, T = InstanceModel, EventModel, WorkloadModel, AttemptModel, TenantModel
_BINDING_KEYS = frozenset({"attempt", "rank"})


def _pricing(value: Any) -> PricingKind:
    try:
        return PricingKind(value)
    except ValueError:
        return PricingKind.ON_DEMAND


def _bindings(events: Iterable[Any]) -> list[tuple[datetime, int | None]]:
    """``(time, workload or None)`` changes of one instance's binding, oldest first.

    Bind and release events look alike (workload, ``{attempt, rank}``); a bind only
    takes an idle instance and a release only frees the attempt that holds it, so they
    alternate: an event for the attempt that holds the instance releases it."""
    out: list[tuple[datetime, int | None]] = []
    held: tuple[int, int] | None = None
    for ev in events:
        data = ev.data
        if (
            ev.from_state is not None
            or ev.to_state is not None
            or ev.workload_id is None
            or not isinstance(data, dict)
            or set(data) != _BINDING_KEYS
        ):
            continue
        node = (int(ev.workload_id), int(data["attempt"]))
        if held == node:
            held = None
            out.append((ev.time, None))
        else:
            held = node
            out.append((ev.time, node[0]))
    return out


def usage_intervals(
    store: Store, at: datetime, since: datetime | None = None
) -> list[UsageInterval]:
    """Every stretch of capacity the store records as running before ``at`` (see the
    module docstring), instances first (by id), then job-level attempts; with ``since``,
    only those still running at or after it (the stretches before it may be included:
    the ledger clips them)."""
    db = store._db  # a reader of the store's own tables, inside the store package
    inst_live = sa.true() if since is None else sa.or_(IM.ended_at.is_(None), IM.ended_at > since)
    att_end = sa.func.coalesce(A.ended_at, W.finished_at)
    att_live = sa.true() if since is None else sa.or_(att_end.is_(None), att_end > since)
    with db.read() as conn:
        insts = list(
            conn.execute(
                sa.select(IM)
                .where(IM.running_at.is_not(None), IM.running_at < at, inst_live)
                .order_by(IM.id)
            ).mappings()
        )
        ids = [r["id"] for r in insts]
        events: dict[int, list[Any]] = {}
        for chunk in range(0, len(ids), 500):
            part = ids[chunk : chunk + 500]
            rows = conn.execute(
                sa.select(E.instance_id, E.time, E.workload_id, E.from_state, E.to_state, E.data)
                .where(E.instance_id.in_(part), E.kind == "instance", E.time < at)
                .order_by(E.id)
            )
            for ev in rows:
                events.setdefault(int(ev.instance_id), []).append(ev)
        tenant_of = {
            int(w): str(t)
            for w, t in conn.execute(sa.select(W.id, T.name).join(T, T.id == W.tenant_id))
        }
        instance_providers = {
            str(p) for p in conn.execute(sa.select(IM.provider).distinct()).scalars()
        }
        attempts = list(
            conn.execute(
                sa.select(A.started_at, A.ended_at, W.finished_at, W.placement, T.name)
                .join(W, W.id == A.workload_id)
                .join(T, T.id == W.tenant_id)
                .where(A.started_at < at, W.placement.is_not(None), att_live)
                .order_by(A.id)
            )
        )
    out: list[UsageInterval] = []
    for r in insts:
        start: datetime = r["running_at"]
        end: datetime | None = r["ended_at"]
        cuts = [(t, w) for t, w in _bindings(events.get(r["id"], ())) if t < (end or at)]
        stops = [*cuts, (end or at, None)]
        owner: int | None = None
        for k, (t, w) in enumerate(stops):
            if t > start:
                out.append(
                    UsageInterval(
                        provider=r["provider"],
                        region=r["region"],
                        instance_type=r["instance_type"],
                        pricing=_pricing(r["pricing"]),
                        contract=r["contract"],
                        tenant=None if owner is None else tenant_of.get(owner),
                        usd_per_hour=float(r["usd_per_hour"]),
                        start=start,
                        end=end if k == len(stops) - 1 else t,
                    )
                )
                start = t
            owner = w
    for began, ended, finished, placement, tenant in attempts:
        p = placement or {}
        provider = str(p.get("provider") or "")
        if not provider or provider in instance_providers:
            continue
        nodes = max(1, int(p.get("nodes") or 1))
        out.append(
            UsageInterval(
                provider=provider,
                region=str(p.get("region") or ""),
                instance_type=str(p.get("instance_type") or ""),
                pricing=_pricing(p.get("pricing")),
                contract=None,
                tenant=str(tenant),
                usd_per_hour=max(0.0, float(p.get("hourly_usd") or 0.0)) / nodes,
                start=began,
                end=ended or finished,
                nodes=nodes,
            )
        )
    return out
