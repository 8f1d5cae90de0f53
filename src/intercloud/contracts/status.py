"""``intercloud contracts status``: every contract's burn-down, the reserved pools'
utilisation, spend per pricing kind, chargeback per tenant and month, and the alerts,
as one typed report with its JSON and text forms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from intercloud.contracts.burndown import (
    DEFAULT_TOLERANCE,
    Alert,
    Burndown,
    budget_alerts,
    burndown,
    usd,
)
from intercloud.contracts.ledger import DEFAULT_RATE_WINDOW, Ledger, ReservedUse, accrue
from intercloud.model.contract import Contract
from intercloud.model.usage import UsageInterval


@dataclass(frozen=True)
class ContractsStatus:
    """The status at ``ledger.at``: one burn-down per contract (in the order given) and
    the tenants' budget alerts."""

    ledger: Ledger
    burndowns: tuple[Burndown, ...]
    budget_alerts: tuple[Alert, ...]
    #: the mark of the store's persisted ledger it was drawn from (None: from usage)
    persisted_until: datetime | None = None

    @property
    def alerts(self) -> tuple[Alert, ...]:
        return tuple(a for b in self.burndowns for a in b.alerts) + self.budget_alerts


def contracts_status(
    intervals: Sequence[UsageInterval],
    contracts: Sequence[Contract],
    at: datetime,
    budgets: Mapping[str, float | None] | None = None,
    window: timedelta = DEFAULT_RATE_WINDOW,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ContractsStatus:
    """Accrue ``intervals`` under ``contracts`` up to ``at`` and draw up the status;
    ``budgets``: monthly USD per tenant name (None: no budget)."""
    return status_of(accrue(intervals, contracts, at, window), contracts, budgets, tolerance)


def status_of(
    ledger: Ledger,
    contracts: Sequence[Contract],
    budgets: Mapping[str, float | None] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    persisted_until: datetime | None = None,
) -> ContractsStatus:
    """The status drawn from ``ledger`` (accrued under ``contracts``)."""
    return ContractsStatus(
        ledger,
        tuple(burndown(c, ledger, tolerance) for c in contracts),
        tuple(budget_alerts(ledger, budgets or {})),
        persisted_until,
    )


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _month(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


def _alert(a: Alert) -> dict[str, Any]:
    out: dict[str, Any] = {
        "code": a.code.value,
        "text": a.text,
        "month": _month(a.month),
        "usd": round(a.usd, 2),
    }
    for key in ("contract", "tenant", "year"):
        if getattr(a, key) is not None:
            out[key] = getattr(a, key)
    return out


def _pool(r: ReservedUse) -> dict[str, Any]:
    return {
        "region": r.region,
        "instance_type": r.instance_type,
        "paid_node_hours": round(r.paid_node_hours, 4),
        "running_node_hours": round(r.running_node_hours, 4),
        "used_node_hours": round(r.used_node_hours, 4),
        "utilisation": round(r.utilisation, 4),
        "usd": round(r.usd, 2),
    }


def to_json(status: ContractsStatus) -> dict[str, Any]:
    """The JSON form (documented in the README's contracts section)."""
    led = status.ledger
    contracts = []
    for b in status.burndowns:
        contracts.append(
            {
                "name": b.contract,
                "provider": b.provider,
                "start": _iso(b.start),
                "end": _iso(b.end),
                "committed_usd": round(b.committed_usd, 2),
                "spent_usd": round(b.spent_usd, 2),
                "projected_usd": round(b.projected_usd, 2),
                "unused_usd": round(b.unused_usd, 2),
                "rate_usd_per_hour": round(b.rate_usd_per_hour, 4),
                "on_track": b.on_track,
                "started": b.started,
                "alerts": [_alert(a) for a in b.alerts],
                "years": [
                    {
                        "year": y.year,
                        "start": _iso(y.start),
                        "end": _iso(y.end),
                        "minimum_usd": round(y.minimum_usd, 2),
                        "spent_usd": round(y.spent_usd, 2),
                        "projected_usd": round(y.projected_usd, 2),
                    }
                    for y in b.years
                ],
                "months": [
                    {
                        "month": _month(m.month),
                        "spent_usd": round(m.spent_usd, 2),
                        "cumulative_usd": round(m.cumulative_usd, 2),
                        "planned_usd": round(m.planned_usd, 2),
                    }
                    for m in b.months
                ],
                "reserved": [_pool(r) for r in led.reserved if r.contract == b.contract],
            }
        )
    until = status.persisted_until
    return {
        "at": _iso(led.at),
        "persisted_until": None if until is None else _iso(until),
        "contracts": contracts,
        "by_kind": {k.value: round(v, 2) for k, v in sorted(led.by_kind().items())},
        "chargeback": {
            tenant: {_month(m): round(x, 2) for m, x in sorted(per.items())}
            for tenant, per in sorted(led.chargeback().items())
        },
        "total_usd": round(led.total_usd, 2),
        "alerts": [_alert(a) for a in status.alerts],
    }


def to_text(status: ContractsStatus) -> list[str]:
    """The human form, one line each."""
    led = status.ledger
    until = status.persisted_until
    source = "from usage" if until is None else f"ledger persisted to {_iso(until)}"
    lines = [f"contracts at {_iso(led.at)} ({source})"]
    if not status.burndowns:
        lines.append("no contracts (pass --contracts FILE or name files under contracts:)")
    for b in status.burndowns:
        track = "not started" if not b.started else "on track" if b.on_track else "NOT on track"
        lines.append(
            f"{b.contract} ({b.provider}, {_month(b.start.date())} to {_month(b.end.date())}): "
            f"committed {usd(b.committed_usd)}, spent {usd(b.spent_usd)}, "
            f"projected {usd(b.projected_usd)}: {track}"
        )
        for r in led.reserved:
            if r.contract == b.contract:
                lines.append(
                    f"  reserved {r.instance_type} in {r.region}: {r.utilisation:.0%} used "
                    f"({r.used_node_hours:,.0f} of {r.paid_node_hours:,.0f} node-hours)"
                )
        for y in b.years:
            if y.minimum_usd > 0:
                lines.append(
                    f"  year {y.year}: minimum {usd(y.minimum_usd)}, spent {usd(y.spent_usd)}, "
                    f"projected {usd(y.projected_usd)}"
                )
    kinds = ", ".join(f"{k.value} {usd(v)}" for k, v in sorted(led.by_kind().items()))
    lines.append(f"spend: {usd(led.total_usd)}" + (f" ({kinds})" if kinds else ""))
    for tenant, per in sorted(led.chargeback().items()):
        months = ", ".join(f"{_month(m)} {usd(x)}" for m, x in sorted(per.items()))
        lines.append(f"chargeback {tenant}: {months}")
    lines += [f"alert {a.code.value}: {a.text}" for a in status.alerts]
    return lines
