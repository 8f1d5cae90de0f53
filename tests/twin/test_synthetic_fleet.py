"""Synthetic fleet and tenants: shape, determinism, prices from the bundled catalog."""

from __future__ import annotations

from collections import Counter

import pytest

from intercloud.catalog.bundled import load_bundled
from intercloud.model import PricingKind
from intercloud.twin.fleets import fleet_summary, synthetic_fleet, synthetic_tenants


@pytest.fixture(scope="module")
def fleet():  # type: ignore[no-untyped-def]
    return synthetic_fleet(500_000, seed=0)


def test_fleet_shape(fleet) -> None:  # type: ignore[no-untyped-def]
    pools, _ = fleet
    s = fleet_summary(pools)
    assert s["gpus"] == 500_000
    assert s["providers"] == 4
    assert {p.provider for p in pools} == {"aws", "azure", "gcp", "oci"}
    assert s["regions"] >= 40
    assert s["pools"] >= 200
    assert s["nvl72_domains"] > 0
    kinds = Counter(p.pricing for p in pools)
    assert set(kinds) == {PricingKind.RESERVED, PricingKind.ON_DEMAND, PricingKind.SPOT}
    assert 0.35 < s["reserved_gpus"] / s["gpus"] < 0.55
    assert len({p.key for p in pools}) == len(pools)
    for p in pools:
        assert p.max_nodes >= 1
        assert p.max_nodes % p.nodes_per_domain == 0
        if p.nodes_per_domain > 1:
            assert (p.accelerator, p.gpus_per_node, p.nodes_per_domain) == ("GB200", 4, 18)
            assert p.domain_gpus == 72
        else:
            assert p.gpus_per_node == 8
        assert p.elastic == (p.provision_delay_s > 0)
        assert (p.contract is not None) == (p.pricing is PricingKind.RESERVED)


def test_prices_come_from_the_catalog(fleet) -> None:  # type: ignore[no-untyped-def]
    pools, contracts = fleet
    cat = {(o.provider, o.region, o.instance_type): o for o in load_bundled().offerings}
    by_name = {c.name: c for c in contracts}
    for p in pools:
        o = cat[(p.provider, p.region, p.instance_type)]
        if p.pricing is PricingKind.ON_DEMAND:
            assert p.usd_per_node_hour == pytest.approx(o.on_demand_price, abs=1e-4)
        elif p.pricing is PricingKind.SPOT:
            assert p.usd_per_node_hour == pytest.approx(o.spot_price, abs=1e-4)
        else:
            c = by_name[p.contract or ""]
            assert p.usd_per_node_hour == c.usd_per_node_hour
            assert c.provider == p.provider
            assert c.usd_per_node_hour < max(
                cat[(c.provider, b.region, b.instance_type)].on_demand_price for b in c.blocks
            )


def test_contracts_cover_reserved_pools(fleet) -> None:  # type: ignore[no-untyped-def]
    pools, contracts = fleet
    assert 4 <= len(contracts) <= 12
    reserved = {(p.provider, p.region, p.zone, p.instance_type): p.max_nodes
                for p in pools if p.pricing is PricingKind.RESERVED}  # fmt: skip
    blocks = {(c.provider, b.region, b.zone, b.instance_type): b.nodes
              for c in contracts for b in c.blocks}  # fmt: skip
    assert blocks == reserved
    assert all(c.hours > 0 and c.total_usd > 0 for c in contracts)


def test_deterministic_and_scalable() -> None:
    a = synthetic_fleet(100_000, seed=3)
    assert a == synthetic_fleet(100_000, seed=3)
    assert a != synthetic_fleet(100_000, seed=4)
    assert fleet_summary(a[0])["gpus"] == 100_000
    assert fleet_summary(synthetic_fleet(20_004, seed=1)[0])["gpus"] == 20_000
    with pytest.raises(ValueError, match="total_gpus must be >= 1000"):
        synthetic_fleet(10)


def test_tenants(fleet) -> None:  # type: ignore[no-untyped-def]
    pools, _ = fleet
    tenants = synthetic_tenants(100, seed=0, pools=pools)
    assert len(tenants) == 100
    assert len({t.name for t in tenants}) == 100
    assert {t.weight for t in tenants} <= {1.0, 2.0, 4.0, 8.0}
    assert len({t.weight for t in tenants}) >= 3
    reserved = Counter[str]()
    for p in pools:
        if p.pricing is PricingKind.RESERVED and p.accelerator:
            reserved[p.accelerator] += p.max_gpus
    for acc, cap in reserved.items():
        total = sum(t.guaranteed_gpus.get(acc, 0) for t in tenants)
        assert 0.5 * cap <= total <= 0.6 * cap
    budgets = [t for t in tenants if t.monthly_budget_usd is not None]
    assert 15 <= len(budgets) <= 50
    assert all(t.guaranteed_gpus for t in tenants)
    assert synthetic_tenants(100, seed=0, pools=pools) == tenants
    with pytest.raises(ValueError, match="n must be >= 1"):
        synthetic_tenants(0, pools=pools)
