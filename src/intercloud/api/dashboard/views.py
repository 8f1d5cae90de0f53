"""What each dashboard panel shows, read for one principal: every read goes through the
SDK's or the store's tenant-filtered queries with the principal's scope (None only for
an admin), never filtered afterwards."""

from __future__ import annotations

import os
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from intercloud.api.auth import Principal
from intercloud.api.context import ApiContext
from intercloud.api.dashboard.series import GROUPS, busy_series
from intercloud.api.dashboard.svg import hhmm, line_chart
from intercloud.store.stats import Stretch, instance_stretches, running_stretches

#: How far back the utilisation charts look, and in how many points.
WINDOWS = {
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
BUCKETS = 60
RECENT_JOBS = 50
LOG_LINES = 400


def queue(ctx: ApiContext, who: Principal) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = ctx.client.queue(who.scope())
    return rows


def jobs(ctx: ApiContext, who: Principal) -> list[dict[str, Any]]:
    from intercloud.sdk import Client

    rows = ctx.store.list_workloads(tenant=who.scope(), latest=RECENT_JOBS)
    return [Client._summary(w) for w in reversed(rows)]


def fleet(ctx: ApiContext, who: Principal, by: str, window: str) -> dict[str, Any]:
    """Busy GPUs and running nodes over ``window`` by ``by``; an admin also gets the
    pools (instances by provider, region, GPU type) and utilisation now."""
    by = by if by in GROUPS else "provider"
    window = window if window in WINDOWS else "1h"
    span = WINDOWS[window]
    now = datetime.now(UTC)
    stretches = running_stretches(ctx.store, now - span, who.scope())
    # the instances' GPUs: the capacity line of instance-backed providers (admins only:
    # instances are shared by every tenant)
    held = _instance_capacity(ctx, now - span) if who.is_admin else []
    charts = []
    for measure, label in (("gpus", "GPUs busy"), ("nodes", "nodes running")):
        starts, series = busy_series(stretches, now, span, BUCKETS, by, measure)
        lines = [(s.label, s.points) for s in series]
        if measure == "gpus" and held:
            _, cap = busy_series(held, now, span, BUCKETS, by, measure)
            lines += [(f"instances: {s.label}", s.points) for s in cap]
        if lines:
            charts.append(
                line_chart(
                    [hhmm(t) for t in starts],
                    lines,
                    label,
                    f"{label} by {by}",
                    dashed=frozenset(name for name, _ in lines if name.startswith("instances:")),
                )
            )
    out: dict[str, Any] = {"by": by, "window": window, "charts": charts, "view": None}
    if who.is_admin:
        from intercloud.api.fleet_view import fleet_view

        out["view"] = fleet_view(ctx.store, ctx.catalog())
    return out


def _instance_capacity(ctx: ApiContext, since: datetime) -> list[Stretch]:
    """Each instance that ran since ``since`` as a stretch of its type's GPUs."""
    from intercloud.api.fleet_view import _gpus_of

    gpus_of = _gpus_of(ctx.catalog())
    out = []
    for i in instance_stretches(ctx.store, since):
        acc, count = gpus_of.get((i.provider, i.instance_type), (None, 0))
        out.append(Stretch(0, "", i.start, i.end, i.provider, i.region, acc, count, 1))
    return out


def tenants(ctx: ApiContext, who: Principal) -> list[dict[str, Any]]:
    """Tenants with usage against quotas and budget: every one for an admin, else the
    caller's own."""
    if who.is_admin:
        rows: list[dict[str, Any]] = ctx.client.tenants()
    else:
        from intercloud.api.routes.tenants import _own

        rows = [_own(ctx.client, who.tenant)]
    for t in rows:
        types = sorted(set(t["quotas"]) | set(t["running_gpus"]) | set(t["guarantees"]))
        t["bars"] = [
            {
                "gpu": g,
                "running": t["running_gpus"].get(g, 0),
                "quota": t["quotas"].get(g),
                "guarantee": t["guarantees"].get(g),
            }
            for g in types
        ]
    return rows


def contracts(ctx: ApiContext, who: Principal) -> dict[str, Any]:
    """Each contract's burn-down (admins: contracts span tenants)."""
    if not who.is_admin:
        return {"allowed": False, "contracts": [], "error": None}
    from intercloud.config import load_config
    from intercloud.contracts.spec import load_contracts
    from intercloud.contracts.status import contracts_status, to_json
    from intercloud.store.usage import usage_intervals

    try:
        config = load_config(os.environ, ctx.client.home)
        signed = tuple(
            c for p in config.contracts for c in load_contracts(p, None, config.enabled).contracts
        )
    except (OSError, ValueError) as exc:  # a broken contracts file: say so on the page
        return {"allowed": True, "contracts": [], "error": str(exc).splitlines()[0]}
    now = datetime.now(UTC)
    budgets = {t.name: t.monthly_budget_usd for t in ctx.store.tenants()}
    report = to_json(contracts_status(usage_intervals(ctx.store, now), signed, now, budgets))
    for c in report["contracts"]:
        months = c["months"]
        c["chart"] = line_chart(
            [m["month"] for m in months],
            [
                ("spent (cumulative)", [m["cumulative_usd"] for m in months]),
                ("planned", [m["planned_usd"] for m in months]),
            ],
            "USD",
            f"{c['name']} burn-down",
            dashed=frozenset({"planned"}),
        )
    return {"allowed": True, "contracts": report["contracts"], "error": None}


def job(ctx: ApiContext, who: Principal, job_id: int) -> dict[str, Any]:
    """The job's whole story (``UnknownWorkload`` for another tenant's, as for none)."""
    story: dict[str, Any] = ctx.client.status(job_id, tenant=who.scope())
    return story


def logs(ctx: ApiContext, who: Principal, job_id: int) -> str:
    """The job's last ``LOG_LINES`` log lines so far."""
    tail = deque(ctx.client.logs(job_id, follow=False, tenant=who.scope()), maxlen=LOG_LINES)
    return "".join(tail)
