"""``TenantLedger.add_spend``: spend the ledger never saw run counts against the budget
of the current month only, bumps the budget key, and refuses bad amounts."""

from __future__ import annotations

import math

import pytest

from intercloud.scheduler.requests import GangRequest, TenantSpec
from intercloud.scheduler.tenancy import TenantLedger

H = 3600.0


def _req(job_id: int) -> GangRequest:
    return GangRequest(job_id, "team", nodes=1, gpus_per_node=1, accelerators=("H100",))


def test_added_spend_counts_against_this_months_budget() -> None:
    led = TenantLedger(
        [TenantSpec("team", monthly_budget_usd=10.0)], {"H100": 8}, month_start_s=0.0
    )
    key = led.budget_key("team", 5 * H)
    led.add_spend("team", 9.5, 5 * H)
    assert led.budget_key("team", 5 * H) != key
    assert led.spent("team", 5 * H) == pytest.approx(9.5)
    assert led.admit(_req(1), "H100", 0.4, 5 * H) is None  # 9.5 + 0.4 <= 10
    why = led.admit(_req(1), "H100", 1.0, 5 * H)
    assert why == "over budget: team spent 9.50 of 10.00 USD this month; this job needs ~1.00"
    # running work accrues on top of it
    led.on_start(2, "team", "H100", 1, 0.25, None, 5 * H, expected_duration_s=H)
    assert led.spent("team", 6 * H) == pytest.approx(9.75)
    led.on_stop(2, 7 * H)
    # a new month starts from nothing
    assert led.spent("team", 31 * 24 * H) == pytest.approx(0.0)


def test_bad_amounts_and_refused_tenants() -> None:
    led = TenantLedger([TenantSpec("team")], {}, default_tenant=None)
    for bad in (-1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="spend"):
            led.add_spend("team", bad, 0.0)
    with pytest.raises(KeyError, match="unknown tenant"):
        led.add_spend("nobody", 1.0, 0.0)
    assert led.spent("team", 0.0) == 0.0
