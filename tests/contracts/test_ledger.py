"""The ledger on hand-computed examples: each pricing kind, tenants, reserved pools and
their idle cost, Capacity Block windows, months, and the spend rate used for projections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from intercloud.contracts.ledger import Ledger, accrue
from intercloud.model.contract import Contract, Payment, ReservedBlock
from intercloud.model.pricing import PricingKind
from intercloud.model.usage import UNASSIGNED, UsageInterval

K = PricingKind


def t(month: int, day: int = 1, hour: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def use(
    pricing: PricingKind,
    start: datetime,
    end: datetime | None,
    usd: float = 10.0,
    tenant: str | None = "alpha",
    provider: str = "aws",
    contract: str | None = None,
    nodes: int = 1,
    region: str = "us-east-1",
    itype: str = "p5.48xlarge",
) -> UsageInterval:
    return UsageInterval(provider, region, itype, pricing, contract, tenant, usd, start, end, nodes)


def commitment(**kw: object) -> Contract:
    args: dict[str, object] = {
        "name": "aws-edp",
        "provider": "aws",
        "blocks": (),
        "start": t(1),
        "end": t(1, year=2028),
        "usd_per_node_hour": 0.0,
        "committed_usd": 100_000.0,
        "discount": 0.2,
    }
    args.update(kw)
    return Contract(**args)  # type: ignore[arg-type]


def cell(led: Ledger, **match: object) -> tuple[float, float]:
    """Summed (node_hours, usd) of the accruals matching every field given."""
    rows = [a for a in led.accruals if all(getattr(a, k) == v for k, v in match.items())]
    return sum(a.node_hours for a in rows), sum(a.usd for a in rows)


def test_plain_on_demand_and_spot_at_list_price() -> None:
    led = accrue(
        [
            use(K.ON_DEMAND, t(1), t(1, 11), usd=10.0, nodes=2),  # 240 h x 2 nodes
            use(K.SPOT, t(1, 5), t(1, 6), usd=3.0, tenant="beta"),  # 24 h
        ],
        [],
        t(2),
    )
    assert cell(led, kind=K.ON_DEMAND, tenant="alpha") == pytest.approx((480.0, 4800.0))
    assert cell(led, kind=K.SPOT, tenant="beta") == pytest.approx((24.0, 72.0))
    assert led.total_usd == pytest.approx(4872.0)
    assert {a.contract for a in led.accruals} == {None}


def test_on_demand_at_a_committed_provider_counts_toward_it_at_the_discount() -> None:
    c = commitment(start=t(1, 10))  # the commitment starts mid-interval
    led = accrue(
        [
            use(K.ON_DEMAND, t(1), t(1, 20), usd=10.0),  # 9 days before, 10 days inside
            use(K.COMMITTED, t(1, 10), t(1, 11), usd=7.0),  # already the contracted rate
            use(K.ON_DEMAND, t(1, 10), t(1, 11), provider="gcp"),  # another provider
        ],
        [c],
        t(2),
    )
    assert cell(led, kind=K.ON_DEMAND, provider="aws") == pytest.approx((216.0, 2160.0))
    committed = cell(led, kind=K.COMMITTED, contract="aws-edp")
    assert committed == pytest.approx((240.0 + 24.0, 240.0 * 8.0 + 24.0 * 7.0))
    assert cell(led, provider="gcp") == pytest.approx((24.0, 240.0))
    assert led.spent("aws-edp") == pytest.approx(240.0 * 8.0 + 24.0 * 7.0)


def test_an_interval_naming_a_contract_goes_to_that_one() -> None:
    first, second = commitment(name="a"), commitment(name="b", discount=0.5)
    led = accrue([use(K.ON_DEMAND, t(1), t(1, 2), contract="b")], [first, second], t(2))
    assert led.spent("a") == 0.0
    assert led.spent("b") == pytest.approx(24 * 5.0)


def test_overlapping_commitments_never_count_an_hour_twice() -> None:
    """The first commitment (in the order given) owns the hours both cover."""
    first = commitment(name="a", start=t(1), end=t(3), discount=0.0)
    second = commitment(name="b", start=t(2), end=t(5), discount=0.5)
    led = accrue([use(K.ON_DEMAND, t(1, 15), t(5, 10))], [first, second], t(6))
    a_hours = (t(3) - t(1, 15)).total_seconds() / 3600
    b_hours = (t(5) - t(3)).total_seconds() / 3600
    assert cell(led, contract="a") == pytest.approx((a_hours, a_hours * 10.0))
    assert cell(led, contract="b") == pytest.approx((b_hours, b_hours * 5.0))
    assert cell(led, contract=None) == pytest.approx((9 * 24.0, 9 * 240.0))


def test_tenants_and_idle_capacity_by_month() -> None:
    led = accrue(
        [
            use(K.ON_DEMAND, t(1, 31, 12), t(2, 1, 12)),  # 12 h in January, 12 in February
            use(K.ON_DEMAND, t(2, 1, 12), t(2, 2), tenant=None),  # idle: 12 h
        ],
        [],
        t(3),
    )
    cb = led.chargeback()
    jan, feb = t(1).date(), t(2).date()
    assert cb["alpha"] == pytest.approx({jan: 120.0, feb: 120.0})
    assert cb[UNASSIGNED] == pytest.approx({feb: 120.0})
    assert led.months == (jan, feb)


def test_still_running_accrues_to_at_and_nothing_after() -> None:
    led = accrue(
        [use(K.ON_DEMAND, t(1), None), use(K.ON_DEMAND, t(1), t(5)), use(K.SPOT, t(3), None)],
        [],
        t(1, 2),
    )
    assert led.total_usd == pytest.approx(2 * 24 * 10.0)


def test_reserved_pool_costs_its_blocks_used_or_not() -> None:
    block = ReservedBlock("us-east-1", "", "p5.48xlarge", 2, t(1), t(3), 50.0, Payment.MONTHLY)
    c = commitment(blocks=(block,), committed_usd=0.0)
    led = accrue(
        [
            # Alpha uses one node for 10 days of January, beta one for 24 h of February;
            # an idle reserved instance ran 24 h in January.
            use(K.RESERVED, t(1, 1), t(1, 11), usd=0.0, contract="aws-edp"),
            use(K.RESERVED, t(2, 1), t(2, 2), usd=0.0, tenant="beta", contract="aws-edp"),
            use(K.RESERVED, t(1, 20), t(1, 21), usd=0.0, tenant=None, contract="aws-edp"),
        ],
        [c],
        t(2, 15),
    )
    jan_paid, feb_paid = 2 * 31 * 24, 2 * 14 * 24  # to `at`
    assert cell(led, tenant="alpha") == pytest.approx((240.0, 240.0 * 50))
    assert cell(led, tenant="beta") == pytest.approx((24.0, 24.0 * 50))
    idle = jan_paid + feb_paid - 240 - 24  # the idle instance's 24 h included
    assert cell(led, tenant=UNASSIGNED) == pytest.approx((idle, idle * 50.0))
    (pool,) = led.reserved
    assert pool.paid_node_hours == pytest.approx(jan_paid + feb_paid)
    assert pool.running_node_hours == pytest.approx(240 + 24 + 24)
    assert pool.used_node_hours == pytest.approx(240 + 24)
    assert pool.utilisation == pytest.approx(264 / (jan_paid + feb_paid))
    # Monthly payment: billed pro rata; the chargeback adds up to the bill.
    assert led.spent("aws-edp") == pytest.approx((jan_paid + feb_paid) * 50.0)
    assert led.total_usd == pytest.approx(led.spent("aws-edp"))


def test_upfront_block_is_billed_when_it_starts_and_spread_for_chargeback() -> None:
    block = ReservedBlock("us-east-1", "", "p5.48xlarge", 1, t(3), t(5), 20.0, Payment.UPFRONT)
    c = commitment(blocks=(block,), committed_usd=0.0)
    led = accrue([], [c], t(3, 2))
    total = 20.0 * 24 * (31 + 30)
    assert led.spent("aws-edp") == total
    assert led.contract_cash["aws-edp"][-1] == total  # all of it in March
    assert cell(led, tenant=UNASSIGNED) == pytest.approx((24.0, 24 * 20.0))
    assert accrue([], [c], t(2, 28)).spent("aws-edp") == 0.0


def test_capacity_block_window_and_its_early_end() -> None:
    """A Capacity Block is paid for its whole window; its instances stop 30 minutes
    before the end, so that last half hour is always idle."""
    block = ReservedBlock(
        "us-east-1", "", "p5.48xlarge", 1, t(1, 1), t(1, 2), 40.0, Payment.UPFRONT, True
    )
    c = commitment(blocks=(block,), committed_usd=0.0)
    assert c.usable_end(block) == t(1, 2) - timedelta(minutes=30)
    led = accrue(
        [use(K.RESERVED, t(1, 1), c.usable_end(block), usd=0.0, contract="aws-edp")], [c], t(2)
    )
    assert led.spent("aws-edp") == pytest.approx(24 * 40.0)
    assert cell(led, tenant="alpha") == pytest.approx((23.5, 23.5 * 40.0))
    assert cell(led, tenant=UNASSIGNED) == pytest.approx((0.5, 20.0))
    assert led.reserved[0].utilisation == pytest.approx(23.5 / 24)


def test_reserved_use_without_a_known_block_costs_its_own_price() -> None:
    led = accrue([use(K.RESERVED, t(1), t(1, 2), usd=9.0, contract="nobody")], [], t(2))
    assert cell(led, kind=K.RESERVED, contract=None) == pytest.approx((24.0, 216.0))


def test_recent_rate_is_committed_spend_over_the_window() -> None:
    c = commitment(discount=0.0)
    # 10 nodes for the last 3 days of a 30-day window at $10: $7,200 over 720 h.
    led = accrue([use(K.ON_DEMAND, t(3, 29), None, nodes=10)], [c], t(4))
    assert led.recent_usd_per_hour["aws-edp"] == pytest.approx(7200.0 / 720.0)


def test_no_usage_at_all() -> None:
    c = commitment()
    led = accrue([], [c], t(3))
    assert led.accruals == () and led.spent("aws-edp") == 0.0
    assert led.recent_usd_per_hour == {"aws-edp": 0.0}
    assert led.months == (t(1).date(), t(2).date())
    assert accrue([], [], t(3)).accruals == ()


def test_bad_input_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"^intervals\[0\]\.end"):
        accrue([use(K.SPOT, t(2), t(1))], [], t(3))
    with pytest.raises(ValueError, match=r"^intervals\[0\]\.usd_per_hour"):
        accrue([use(K.SPOT, t(1), t(2), usd=-1.0)], [], t(3))
    with pytest.raises(ValueError, match=r"^at:"):
        accrue([], [], datetime(2026, 1, 1))


def test_many_intervals_match_a_plain_loop() -> None:
    """The vectorised accrual equals a per-interval, per-hour-free Python sum."""
    import random

    rng = random.Random(7)
    rows = []
    for _ in range(300):
        start = t(1) + timedelta(hours=rng.uniform(0, 24 * 80))
        end = start + timedelta(hours=rng.uniform(0.1, 24 * 40))
        kind = rng.choice([K.ON_DEMAND, K.SPOT, K.COMMITTED])
        prov = rng.choice(["aws", "gcp"])
        rows.append(use(kind, start, end, usd=rng.uniform(1, 40), provider=prov, nodes=2))
    at = t(3, 15)
    c = commitment(start=t(2), end=t(3, 1), discount=0.25)
    led = accrue(rows, [c], at)
    want = 0.0
    for u in rows:
        assert u.end is not None
        for a, b, factor in (
            (u.start, min(u.end, at, c.start), 1.0),
            (max(u.start, c.end), min(u.end, at), 1.0),
        ):
            want += max(0.0, (b - a).total_seconds() / 3600) * u.usd_per_hour * factor * u.nodes
        a, b = max(u.start, c.start), min(u.end, at, c.end)
        inside = max(0.0, (b - a).total_seconds() / 3600) * u.nodes
        if u.provider == "aws" and u.pricing is K.ON_DEMAND:
            want += inside * u.usd_per_hour * 0.75
        else:
            want += inside * u.usd_per_hour
    assert led.total_usd == pytest.approx(want)
