"""Burn-down, projection and every alert code on hand-computed examples."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from intercloud.contracts.burndown import ALERT_TEXT, AlertCode, budget_alerts, burndown
from intercloud.contracts.ledger import accrue
from intercloud.model.contract import Contract, Payment, ReservedBlock
from intercloud.model.pricing import PricingKind
from intercloud.model.usage import UsageInterval

HOURS_2Y = (365 + 365) * 24


def t(month: int, day: int = 1, year: int = 2026) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


def contract(**kw: object) -> Contract:
    args: dict[str, object] = {
        "name": "aws-edp",
        "provider": "aws",
        "blocks": (),
        "start": t(1),
        "end": t(1, year=2028),
        "usd_per_node_hour": 0.0,
        "committed_usd": 100_000.0,
        "yearly_minimums_usd": (40_000.0, 40_000.0),
    }
    args.update(kw)
    return Contract(**args)  # type: ignore[arg-type]


def running(usd: float, tenant: str = "alpha") -> UsageInterval:
    """One on-demand node at ``usd`` an hour since the contract began, still running."""
    return UsageInterval(
        "aws", "us-east-1", "p5.48xlarge", PricingKind.ON_DEMAND, None, tenant, usd, t(1), None
    )


def test_every_alert_code_has_text() -> None:
    assert set(ALERT_TEXT) == set(AlertCode)


def test_under_consumption_and_a_yearly_minimum_at_risk() -> None:
    c = contract()
    at = t(7)
    b = burndown(c, accrue([running(2.0)], [c], at))
    assert b.spent_usd == pytest.approx(181 * 24 * 2.0)
    assert b.rate_usd_per_hour == pytest.approx(2.0)
    assert b.projected_usd == pytest.approx(HOURS_2Y * 2.0)
    assert not b.on_track
    codes = [a.code for a in b.alerts]
    assert codes == [AlertCode.YEARLY_MINIMUM_AT_RISK, AlertCode.UNDER_CONSUMPTION]
    under = b.alerts[1]
    assert under.usd == pytest.approx(100_000 - HOURS_2Y * 2.0)
    assert under.text == "at this rate $64,960 of the aws commitment (aws-edp) is unused by 2028-01"
    risk = b.alerts[0]
    assert risk.year == 1 and risk.usd == pytest.approx(40_000 - 8760 * 2.0)
    assert b.years[0].projected_usd == pytest.approx(8760 * 2.0)
    # The plan line is linear over the term; months are billed as they ran.
    jan = b.months[0]
    assert jan.spent_usd == pytest.approx(31 * 24 * 2.0)
    assert jan.planned_usd == pytest.approx(100_000 * 31 * 24 / HOURS_2Y)
    assert b.months[-1].cumulative_usd == pytest.approx(b.spent_usd)


def test_a_missed_yearly_minimum() -> None:
    c = contract()
    b = burndown(c, accrue([running(2.0)], [c], t(2, year=2027)))
    missed = [a for a in b.alerts if a.code is AlertCode.YEARLY_MINIMUM_MISSED]
    assert len(missed) == 1
    assert missed[0].usd == pytest.approx(40_000 - 8760 * 2.0)
    assert missed[0].text == (
        "aws-edp: contract year 1 (to 2026-12) spent $17,520 of its $40,000 minimum, $22,480 short"
    )
    assert b.years[0].spent_usd == pytest.approx(8760 * 2.0)


def test_over_commitment() -> None:
    c = contract()
    b = burndown(c, accrue([running(10.0)], [c], t(7)))
    assert [a.code for a in b.alerts] == [AlertCode.OVER_COMMITMENT]
    assert b.alerts[0].usd == pytest.approx(HOURS_2Y * 10.0 - 100_000)
    assert b.on_track  # burning faster than committed is not falling behind


def test_on_track_at_the_committed_rate() -> None:
    c = contract()
    b = burndown(c, accrue([running(100_000 / HOURS_2Y)], [c], t(7)))
    assert b.alerts == ()
    assert b.on_track
    assert b.projected_usd == pytest.approx(100_000)
    assert b.unused_usd == pytest.approx(0.0, abs=1e-6)


def test_projection_adds_reserved_bills_still_to_come() -> None:
    block = ReservedBlock(
        "us-east-1", "", "p5.48xlarge", 2, t(3, year=2027), t(5, year=2027), 30.0, Payment.UPFRONT
    )
    c = contract(blocks=(block,))
    b = burndown(c, accrue([running(2.0)], [c], t(7)))
    upfront = 2 * 30.0 * (31 + 30) * 24
    assert b.projected_usd == pytest.approx(HOURS_2Y * 2.0 + upfront)
    # Year 2 holds the block.
    assert b.years[1].projected_usd == pytest.approx(8760 * 2.0 + upfront)


def test_reservation_only_contract_commits_its_blocks() -> None:
    block = ReservedBlock("us-east-1", "", "p5.48xlarge", 1, t(1), t(3), 10.0, Payment.MONTHLY)
    c = contract(blocks=(block,), committed_usd=0.0, yearly_minimums_usd=())
    b = burndown(c, accrue([], [c], t(2)))
    assert b.committed_usd == pytest.approx(10.0 * 24 * 59)
    assert b.projected_usd == pytest.approx(b.committed_usd)
    assert b.on_track and b.alerts == ()


def test_a_contract_not_yet_started_has_no_alerts() -> None:
    block = ReservedBlock(
        "us-east-1", "", "p5.48xlarge", 1, t(1, year=2027), t(3, year=2027), 10.0, Payment.UPFRONT
    )
    c = contract(start=t(1, year=2027), end=t(1, year=2029), blocks=(block,))
    b = burndown(c, accrue([running(2.0)], [c], t(7)))
    assert not b.started and b.on_track and b.alerts == ()
    assert b.spent_usd == 0.0
    assert b.projected_usd == pytest.approx(10.0 * 24 * 59)  # the bill already due


def test_tenant_over_its_monthly_budget() -> None:
    c = contract()
    led = accrue([running(2.0), running(1.0, tenant="beta")], [c], t(3))
    alerts = budget_alerts(led, {"alpha": 1000.0, "beta": None})
    assert [(a.code, a.tenant, a.month.month) for a in alerts] == [
        (AlertCode.OVER_BUDGET, "alpha", 1),
        (AlertCode.OVER_BUDGET, "alpha", 2),
    ]
    assert alerts[0].usd == pytest.approx(31 * 24 * 2.0 - 1000)
    assert (
        alerts[0].text
        == "tenant alpha spent $1,488 in 2026-01, $488 over its $1,000 monthly budget"
    )
