"""Burn-down of each contract against its commitment, a projection to the end of its
term, and alerts (typed codes; the words live in ``ALERT_TEXT``).

Committed is the contract's ``committed_usd`` (a reservation-only contract: what its
blocks cost). Spent is what the ledger billed the contract up to its instant.
Projected = spent + the blocks' bills still to come + the recent committed spend rate
(``Ledger.recent_usd_per_hour``) for every hour left in the term. The plan line is
linear: ``committed x elapsed share of the term``. Contract year ``i`` runs from the
term's start plus ``i`` years; its spend sums the ledger's months that start inside it
(exact for a term that starts on a month's first day, as contracts do).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum

from intercloud.contracts.ledger import HOUR_S, Ledger, block_cash
from intercloud.model.contract import Contract

#: Relative slack before a projection counts as under or over the commitment.
DEFAULT_TOLERANCE = 0.02


class AlertCode(StrEnum):
    UNDER_CONSUMPTION = "under_consumption"
    YEARLY_MINIMUM_MISSED = "yearly_minimum_missed"
    YEARLY_MINIMUM_AT_RISK = "yearly_minimum_at_risk"
    OVER_COMMITMENT = "over_commitment"
    OVER_BUDGET = "over_budget"


#: The human text of each code (``str.format`` fields: the ``Alert``'s, money as ``$1,234``).
ALERT_TEXT: dict[AlertCode, str] = {
    AlertCode.UNDER_CONSUMPTION: (
        "at this rate {usd} of the {provider} commitment ({contract}) is unused by {month}"
    ),
    AlertCode.YEARLY_MINIMUM_MISSED: (
        "{contract}: contract year {year} (to {month}) spent {spent} of its {limit} minimum, "
        "{usd} short"
    ),
    AlertCode.YEARLY_MINIMUM_AT_RISK: (
        "{contract}: at this rate contract year {year} ends in {month} {usd} short of its "
        "{limit} minimum"
    ),
    AlertCode.OVER_COMMITMENT: (
        "{contract}: at this rate {provider} spend exceeds the {limit} commitment by {usd} "
        "by {month}"
    ),
    AlertCode.OVER_BUDGET: (
        "tenant {tenant} spent {spent} in {month}, {usd} over its {limit} monthly budget"
    ),
}


def usd(x: float) -> str:
    return f"${x:,.0f}"


def _month(d: date | datetime) -> str:
    return f"{d.year:04d}-{d.month:02d}"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: ``usd`` is the amount at stake (unused, short, over), ``spent_usd`` and
    ``limit_usd`` what it compares, ``month`` the month it is about."""

    code: AlertCode
    month: date
    usd: float
    spent_usd: float = 0.0
    limit_usd: float = 0.0
    contract: str | None = None
    provider: str | None = None
    tenant: str | None = None
    year: int | None = None

    @property
    def text(self) -> str:
        return ALERT_TEXT[self.code].format(
            usd=usd(self.usd),
            spent=usd(self.spent_usd),
            limit=usd(self.limit_usd),
            month=_month(self.month),
            contract=self.contract,
            provider=self.provider,
            tenant=self.tenant,
            year=self.year,
        )


@dataclass(frozen=True, slots=True)
class MonthBurn:
    """One month: billed, billed so far, and the linear plan's cumulative commitment."""

    month: date
    spent_usd: float
    cumulative_usd: float
    planned_usd: float


@dataclass(frozen=True, slots=True)
class YearBurn:
    """Contract year ``year`` (1-based) ``[start, end)``: its minimum (0: none), what it
    has spent and what it is projected to spend."""

    year: int
    start: datetime
    end: datetime
    minimum_usd: float
    spent_usd: float
    projected_usd: float


@dataclass(frozen=True)
class Burndown:
    """One contract's burn-down at the ledger's instant."""

    contract: str
    provider: str
    start: datetime
    end: datetime
    committed_usd: float
    spent_usd: float
    projected_usd: float
    rate_usd_per_hour: float
    months: tuple[MonthBurn, ...]
    years: tuple[YearBurn, ...]
    alerts: tuple[Alert, ...]
    #: whether the term had begun at the ledger's instant (before it: no alerts)
    started: bool = True

    @property
    def on_track(self) -> bool:
        """No under-consumption and no yearly minimum missed or at risk."""
        return not any(a.code is not AlertCode.OVER_COMMITMENT for a in self.alerts)

    @property
    def unused_usd(self) -> float:
        return max(0.0, self.committed_usd - self.projected_usd)


def add_years(t: datetime, years: int) -> datetime:
    try:
        return t.replace(year=t.year + years)
    except ValueError:  # 29 February
        return t.replace(year=t.year + years, day=28)


def _blocks_due(c: Contract, t0: datetime, t1: datetime) -> float:
    return sum(block_cash(c, b, t0, t1) for b in c.blocks) if t1 > t0 else 0.0


def _hours(t0: datetime, t1: datetime) -> float:
    return max(0.0, (t1 - t0).total_seconds() / HOUR_S)


def burndown(c: Contract, ledger: Ledger, tolerance: float = DEFAULT_TOLERANCE) -> Burndown:
    """The burn-down of ``c`` from ``ledger`` (which must have been drawn up with ``c``)."""
    at = ledger.at
    cash = ledger.contract_cash.get(c.name, ())
    rate = ledger.recent_usd_per_hour.get(c.name, 0.0)
    committed = c.committed_usd if c.committed_usd > 0 else c.total_usd
    spent = float(sum(cash))
    rest = max(at, c.start)
    projected = spent + _blocks_due(c, rest, c.end) + rate * _hours(rest, c.end)
    term_s = (c.end - c.start).total_seconds()
    months: list[MonthBurn] = []
    total = 0.0
    for m, x in zip(ledger.months, cash, strict=True):
        m_start = datetime(m.year, m.month, 1, tzinfo=UTC)
        if m_start >= c.end or (x == 0 and m_start < c.start.replace(day=1)):
            continue
        total += x
        m_end = min(datetime(m.year + m.month // 12, m.month % 12 + 1, 1, tzinfo=UTC), c.end, at)
        share = min(1.0, max(0.0, (m_end - c.start).total_seconds() / term_s))
        months.append(MonthBurn(m, x, total, committed * share))
    years: list[YearBurn] = []
    alerts: list[Alert] = []
    i = 0
    while add_years(c.start, i) < c.end:
        y0, y1 = add_years(c.start, i), min(add_years(c.start, i + 1), c.end)
        y_spent = sum(
            x
            for m, x in zip(ledger.months, cash, strict=True)
            if y0 <= datetime(m.year, m.month, 1, tzinfo=UTC) < y1
        )
        r0 = max(at, y0)
        y_proj = y_spent + _blocks_due(c, r0, y1) + rate * _hours(r0, y1)
        minimum = c.yearly_minimums_usd[i] if i < len(c.yearly_minimums_usd) else 0.0
        years.append(YearBurn(i + 1, y0, y1, minimum, y_spent, y_proj))
        last = (y1 - (y1 - y0) / 1e6).date()  # the year's last month, for the text
        if minimum > 0 and y1 <= at and y_spent < minimum * (1 - 1e-9):
            alerts.append(
                Alert(
                    AlertCode.YEARLY_MINIMUM_MISSED,
                    last,
                    minimum - y_spent,
                    y_spent,
                    minimum,
                    c.name,
                    c.provider,
                    year=i + 1,
                )
            )
        elif minimum > 0 and y0 <= at < y1 and y_proj < minimum * (1 - tolerance):
            alerts.append(
                Alert(
                    AlertCode.YEARLY_MINIMUM_AT_RISK,
                    last,
                    minimum - y_proj,
                    y_spent,
                    minimum,
                    c.name,
                    c.provider,
                    year=i + 1,
                )
            )
        i += 1
    end_month = c.end.date()  # "unused by 2032-11" for a term ending 2032-11-01
    if at < c.start:  # nothing has run under it yet: no rate to judge it by
        pass
    elif c.committed_usd > 0 and projected < committed * (1 - tolerance):
        alerts.append(
            Alert(
                AlertCode.UNDER_CONSUMPTION,
                end_month,
                committed - projected,
                spent,
                committed,
                c.name,
                c.provider,
            )
        )
    elif c.committed_usd > 0 and projected > committed * (1 + tolerance):
        alerts.append(
            Alert(
                AlertCode.OVER_COMMITMENT,
                end_month,
                projected - committed,
                spent,
                committed,
                c.name,
                c.provider,
            )
        )
    return Burndown(
        c.name,
        c.provider,
        c.start,
        c.end,
        committed,
        spent,
        projected,
        rate,
        tuple(months),
        tuple(years),
        tuple(alerts),
        started=at >= c.start,
    )


def budget_alerts(ledger: Ledger, budgets: Mapping[str, float | None]) -> list[Alert]:
    """An ``OVER_BUDGET`` alert for every tenant and month whose chargeback exceeds the
    tenant's monthly budget (None or a tenant not listed: no budget)."""
    out: list[Alert] = []
    for tenant, per in sorted(ledger.chargeback().items()):
        budget = budgets.get(tenant)
        if budget is None:
            continue
        for month, spent in sorted(per.items()):
            if spent > budget * (1 + 1e-9):
                out.append(
                    Alert(
                        AlertCode.OVER_BUDGET, month, spent - budget, spent, budget, tenant=tenant
                    )
                )
    return out


def burndowns(
    contracts: Sequence[Contract], ledger: Ledger, tolerance: float = DEFAULT_TOLERANCE
) -> list[Burndown]:
    return [burndown(c, ledger, tolerance) for c in contracts]
