"""TenantLedger unit tests: quota, borrowing and reclaim, budgets, months, decay, defaults."""

from __future__ import annotations

import math

import pytest

from intercloud.scheduler.requests import GangRequest, TenantSpec
from intercloud.scheduler.tenancy import TenantLedger

H = 3600.0


def req(job_id: int, tenant: str, gpus: int, duration_s: float | None = None) -> GangRequest:
    return GangRequest(
        job_id=job_id,
        tenant=tenant,
        nodes=1,
        gpus_per_node=gpus,
        accelerators=("H100",),
        duration_s=duration_s,
    )


def ledger() -> TenantLedger:
    tenants = [
        TenantSpec("research", weight=1, guaranteed_gpus={"H100": 64}),
        TenantSpec("prod", weight=2, guaranteed_gpus={"H100": 32}),
        TenantSpec("interns", weight=1, can_borrow=False, guaranteed_gpus={"H100": 8}),
    ]
    return TenantLedger(tenants, {"H100": 128}, month_start_s=0.0)


def test_within_guarantee_is_admitted_and_not_borrowed() -> None:
    led = ledger()
    assert led.admit(req(1, "research", 64), "H100", 0.0, 0.0) is None
    assert led.on_start(1, "research", "H100", 64, 0.0, False, 0.0) == 0
    assert led.running("research", "H100") == 64
    assert led.borrowed("research", "H100") == 0


def test_borrowing_idle_quota_and_the_reason_when_nothing_is_idle() -> None:
    led = ledger()
    led.on_start(1, "research", "H100", 64, 0.0, None, 0.0)
    # pool 128 = 64+32+8 guaranteed + 24 unreserved; 64 idle now.
    assert led.idle("H100") == 64
    assert led.admit(req(2, "research", 64), "H100", 0.0, 0.0) is None
    assert led.on_start(2, "research", "H100", 64, 0.0, True, 0.0) == 64
    assert led.idle("H100") == 0
    why = led.admit(req(3, "research", 8), "H100", 0.0, 0.0)
    assert why == "over quota: research uses 128 of 64 guaranteed H100 and nothing idle to borrow"
    # prod is within its guarantee: admitted, and research's borrowed job is reclaimable.
    assert led.admit(req(4, "prod", 32), "H100", 0.0, 0.0) is None
    assert led.reclaimable("prod", "H100", 32) == [2]
    assert led.reclaimable("prod", "H100", 33) == []  # beyond its guarantee
    assert led.reclaimable("research", "H100") == []  # research is over its guarantee


def test_partial_idle_and_no_borrow_reasons() -> None:
    led = ledger()
    led.on_start(1, "prod", "H100", 32, 0.0, None, 0.0)
    led.on_start(2, "prod", "H100", 80, 0.0, None, 0.0)  # borrows 80 (of 96 idle)
    assert led.admit(req(3, "prod", 24), "H100", 0.0, 0.0) == (
        "over quota: prod uses 112 of 32 guaranteed H100 and only 16 idle to borrow (needs 24)"
    )
    led.on_start(3, "interns", "H100", 8, 0.0, None, 0.0)
    assert led.admit(req(4, "interns", 1), "H100", 0.0, 0.0) == (
        "over quota: interns uses 8 of 8 guaranteed H100 and may not borrow (needs 1)"
    )


def test_gang_split_between_guarantee_and_borrowed_and_promotion_on_stop() -> None:
    led = ledger()
    led.on_start(1, "prod", "H100", 24, 0.0, None, 0.0)
    assert led.borrow_needed("prod", "H100", 16) == 8
    with pytest.raises(ValueError, match="borrowed=False"):
        led.on_start(2, "prod", "H100", 16, 0.0, False, 0.0)
    assert led.on_start(2, "prod", "H100", 16, 0.0, True, 1.0) == 8
    assert led.reclaimable("research", "H100") == [2]
    # Job 1 stops: its freed guarantee absorbs job 2's borrowed part.
    assert led.on_stop(1, 2.0)
    assert led.borrowed("prod", "H100") == 0
    assert led.reclaimable("research", "H100") == []
    assert not led.on_stop(1, 3.0)  # idempotent


def test_reclaimable_newest_first_and_only_other_tenants() -> None:
    led = ledger()
    led.on_start(1, "research", "H100", 64, 0.0, None, 0.0)
    led.on_start(2, "research", "H100", 8, 0.0, None, 10.0)
    led.on_start(3, "research", "H100", 8, 0.0, None, 20.0)
    led.on_start(4, "prod", "H100", 32, 0.0, None, 20.0)
    led.on_start(5, "prod", "H100", 8, 0.0, None, 20.0)
    assert led.reclaimable("interns", "H100", 8) == [5, 3, 2]
    assert led.reclaimable("prod", "H100", 8) == []  # prod uses all of its guarantee


def test_unmanaged_type_and_cpu_only_are_not_limited_by_quota() -> None:
    led = ledger()
    gpu = GangRequest(job_id=1, tenant="interns", nodes=64, gpus_per_node=8)
    assert led.admit(gpu, "B200", 0.0, 0.0) is None  # B200: no capacity, no guarantee
    cpu = GangRequest(job_id=2, tenant="interns", nodes=500, gpus_per_node=0)
    assert led.admit(cpu, None, 0.0, 0.0) is None


def test_budget_counts_spend_committed_work_and_the_request() -> None:
    led = TenantLedger(
        [TenantSpec("research", monthly_budget_usd=10_000.0)], {"H100": 64}, month_start_s=0.0
    )
    # 100 USD/h for 90 h: 9,000 committed at start.
    assert led.admit(req(1, "research", 8, 90 * H), "H100", 100.0, 0.0) is None
    led.on_start(1, "research", "H100", 8, 100.0, None, 0.0, 90 * H)
    assert led.committed("research", 0.0) == pytest.approx(9000.0)
    why = led.admit(req(2, "research", 8, 10 * H), "H100", 120.0, 0.0)
    assert why == (
        "over budget: research spent 0.00 (+9,000.00 committed to running work) of 10,000.00"
        " USD this month; this job needs ~1,200.00"
    )
    # Unknown duration: one hour at 1,000/h is exactly what is left.
    assert led.admit(req(3, "research", 8), "H100", 1000.0, 0.0) is None
    # After 90 h the job has spent 9,000 and commits nothing more.
    assert led.spent("research", 90 * H) == pytest.approx(9000.0)
    assert led.committed("research", 90 * H) == 0.0
    led.on_stop(1, 98.12 * H)  # ran 8.12 h over its estimate
    assert led.admit(req(4, "research", 8, 4.2 * H), "H100", 100.0, 98.12 * H) == (
        "over budget: research spent 9,812.00 of 10,000.00 USD this month; this job needs ~420.00"
    )


def test_month_rollover_resets_spend() -> None:
    month = 30 * 24 * H
    led = TenantLedger(
        [TenantSpec("a", monthly_budget_usd=1000.0)],
        {"H100": 8},
        month_start_s=0.0,
        month_length_s=month,
    )
    led.on_start(1, "a", "H100", 8, 10.0, None, month - 50 * H, 100 * H)
    assert led.spent("a", month - 1) == pytest.approx(10.0 * (50 - 1 / 3600))
    assert led.spent("a", month + 10 * H) == pytest.approx(100.0)
    assert led.last_month_spent("a") == pytest.approx(500.0)
    assert led.month(month + 10 * H) == (month, 2 * month)


def test_calendar_months_by_default() -> None:
    led = TenantLedger([TenantSpec("a")], {"H100": 8})
    jan_31 = 1_706_659_200.0  # 2024-01-31T00:00:00Z
    assert led.month(jan_31) == (1_704_067_200.0, 1_706_745_600.0)  # Jan 1 .. Feb 1
    assert led.month(jan_31 + 2 * 24 * H)[0] == 1_706_745_600.0


def test_decayed_usage_halves_each_half_life_and_shares_are_weighted() -> None:
    led = TenantLedger(
        [TenantSpec("a", weight=1), TenantSpec("b", weight=4)],
        {"H100": 100},
        half_life_s=H,
        month_start_s=0.0,
    )
    led.on_start(1, "a", "H100", 50, 0.0, None, 0.0)
    led.on_start(2, "b", "H100", 50, 0.0, None, 0.0)
    # Long steady run: U → running / λ GPU-seconds; share = U / capacity / weight.
    shares = led.dominant_shares(100 * H)
    assert shares["a"] == pytest.approx(50 * H / math.log(2) / 100)
    assert shares["b"] == pytest.approx(shares["a"] / 4)
    led.on_stop(1, 100 * H)
    u0 = led.usage("a", 100 * H)["H100"]
    assert led.usage("a", 101 * H)["H100"] == pytest.approx(u0 / 2)
    assert led.usage("a", 103 * H)["H100"] == pytest.approx(u0 / 8)


def test_dominant_share_is_max_over_types() -> None:
    led = TenantLedger(
        [TenantSpec("a")], {"H100": 100, "A100": 10}, half_life_s=math.inf, month_start_s=0.0
    )
    led.on_start(1, "a", "H100", 50, 0.0, None, 0.0)
    led.on_start(2, "a", "A100", 8, 0.0, None, 0.0)
    # No decay: 500 GPU-s of H100 (5 s of the type), 80 of A100 (8 s of the type).
    assert led.usage("a", 10.0) == {"H100": 500.0, "A100": 80.0}
    assert led.dominant_shares(10.0)["a"] == pytest.approx(8.0)
    assert led.share_increment(("B200", "A100"), 5) == pytest.approx(0.5)
    assert led.share_increment(("B200",), 5) == 0.0


def test_unknown_tenants_default_or_refused() -> None:
    led = ledger()
    assert led.admit(req(1, "newcomer", 8), "H100", 0.0, 0.0) is None
    assert led.weight("newcomer") == 1.0
    assert led.guaranteed("newcomer", "H100") == 0
    strict = TenantLedger([TenantSpec("a")], {"H100": 8}, default_tenant=None)
    assert strict.admit(req(1, "ghost", 8), "H100", 0.0, 0.0) == "unknown tenant: ghost"
    with pytest.raises(KeyError, match="unknown tenant: ghost"):
        strict.on_start(1, "ghost", "H100", 8, 0.0, None, 0.0)


def test_invalid_specs_and_duplicate_starts_raise() -> None:
    with pytest.raises(ValueError, match="half_life_s"):
        TenantLedger([], {}, half_life_s=0.0)
    with pytest.raises(ValueError, match="weight"):
        TenantLedger([TenantSpec("a", weight=0.0)], {})
    with pytest.raises(ValueError, match="twice"):
        TenantLedger([TenantSpec("a"), TenantSpec("a")], {})
    led = ledger()
    led.on_start(1, "prod", "H100", 8, 0.0, None, 0.0)
    with pytest.raises(ValueError, match="already running"):
        led.on_start(1, "prod", "H100", 8, 0.0, None, 0.0)


def test_clock_never_goes_backwards() -> None:
    led = TenantLedger([TenantSpec("a")], {"H100": 8}, month_start_s=0.0)
    led.on_start(1, "a", "H100", 8, 36.0, None, 10 * H)
    led.on_stop(1, 5 * H)  # treated as 10 h: ran for zero time
    assert led.spent("a", 0.0) == 0.0
    assert math.isfinite(led.dominant_shares(0.0)["a"])
