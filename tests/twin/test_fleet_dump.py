"""Fleets written back as YAML load to the same fleet."""

from __future__ import annotations

from pathlib import Path

from intercloud.model import PricingKind
from intercloud.scheduler.cost.caps import DiversificationCaps
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.twin.fleet_dump import dump_fleet, fleet_document
from intercloud.twin.fleet_spec import Fleet, load_fleet, parse_fleet
from intercloud.twin.fleets import synthetic_fleet, synthetic_tenants

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "fleets"


def same(a: Fleet, b: Fleet) -> None:
    assert sorted(a.pools, key=lambda p: p.key) == sorted(b.pools, key=lambda p: p.key)
    assert a.tenants == b.tenants
    assert {(c.name, c.provider, c.start, c.end, c.usd_per_node_hour, frozenset(c.blocks))
            for c in a.contracts} == {
        (c.name, c.provider, c.start, c.end, c.usd_per_node_hour, frozenset(c.blocks))
        for c in b.contracts
    }  # fmt: skip
    assert (a.caps is None) == (b.caps is None)
    if a.caps is not None and b.caps is not None:
        assert a.caps.min_fleet_gpus == b.caps.min_fleet_gpus
        for p in {p.provider for p in a.pools}:
            assert a.caps.share(p) == b.caps.share(p)


def test_synthetic_500k_fleet_round_trips() -> None:
    pools, contracts = synthetic_fleet(500_000, seed=3)
    tenants = synthetic_tenants(12, seed=3, pools=pools)
    caps = DiversificationCaps({"aws": 0.6, "gcp": 0.4}, min_fleet_gpus=1_000)
    fleet = Fleet("synthetic", "from code", tuple(pools), tuple(contracts), tuple(tenants), caps)
    back = parse_fleet(dump_fleet(fleet))
    same(fleet, back)
    assert back.gpus == 500_000


def test_examples_round_trip() -> None:
    for path in sorted(EXAMPLES.glob("*.yaml")):
        fleet = load_fleet(path)
        same(fleet, parse_fleet(dump_fleet(fleet), source=path.name))


def test_shape_written_only_where_the_catalog_differs() -> None:
    known = PoolSpec("aws", "us-east-1", "us-east-1a", "p5.48xlarge", PricingKind.ON_DEMAND,
                     "H100", 8, 192.0, 2048.0, 1, 4, 55.04, 600.0)  # fmt: skip
    custom = PoolSpec("aws", "us-east-1", "us-east-1a", "x9.huge", PricingKind.SPOT,
                      "X1", 4, 64.0, 512.0, 2, 6, 3.5, 30.0)  # fmt: skip
    fleet = Fleet("t", "", (known, custom), (), (), None)
    doc = fleet_document(fleet)
    pools = doc["providers"][0]["regions"][0]["zones"][0]["pools"]
    assert "shape" not in pools[0]
    assert pools[1]["shape"] == {
        "accelerator": "X1", "gpus_per_node": 4, "vcpus": 64, "memory_gib": 512,
        "nodes_per_domain": 2,
    }  # fmt: skip
    assert pools[1]["domains"] == 3
    back = parse_fleet(dump_fleet(fleet))
    assert sorted(back.pools, key=lambda p: p.key) == sorted(fleet.pools, key=lambda p: p.key)
