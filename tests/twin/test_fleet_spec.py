"""Fleet description: the examples, what the loader builds, the schema, and bad files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from intercloud.model import PricingKind
from intercloud.twin.fleet_spec import (
    SCHEMA_PATH,
    FleetSpecError,
    json_schema,
    load_fleet,
    parse_fleet,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "fleets"


def test_small_cluster_builds_scheduler_types() -> None:
    fleet = load_fleet(EXAMPLES / "small-cluster.yaml")
    by_key = {p.key: p for p in fleet.pools}
    reserved = by_key["aws/us-east-1/us-east-1a/p5.48xlarge/reserved"]
    assert (reserved.max_nodes, reserved.gpus_per_node, reserved.accelerator) == (32, 8, "H100")
    assert (reserved.contract, reserved.usd_per_node_hour, reserved.provision_delay_s) == (
        "aws-h100-1y",
        30.27,
        0.0,
    )
    spot = by_key["aws/us-east-1/us-east-1a/p5.48xlarge/spot"]
    od = by_key["aws/us-east-1/us-east-1a/p5.48xlarge/on_demand"]
    assert spot.usd_per_node_hour < od.usd_per_node_hour  # catalog spot vs list price
    assert (spot.provision_delay_s, od.provision_delay_s) == (120.0, 600.0)
    rack = by_key["oci/us-chicago-1/us-chicago-1-AD-1/BM.GPU.GB200.4/reserved"]
    assert (rack.max_nodes, rack.nodes_per_domain, rack.domain_gpus) == (18, 18, 72)
    cpu = by_key["aws/us-east-1/us-east-1a/m7i.8xlarge/on_demand"]
    assert (cpu.accelerator, cpu.max_gpus, cpu.provision_delay_s) == (None, 0, 90.0)
    assert fleet.gpus == 256 + 128 + 64 + 72
    (aws_c,) = [c for c in fleet.contracts if c.name == "aws-h100-1y"]
    assert [(b.zone, b.instance_type, b.nodes) for b in aws_c.blocks] == [
        ("us-east-1a", "p5.48xlarge", 32)
    ]
    assert aws_c.start.year == 2026 and aws_c.hours == 8760
    tenants = {t.name: t for t in fleet.tenants}
    assert tenants["research"].guaranteed_gpus == {"H100": 128, "GB200": 72}
    assert tenants["product"].monthly_budget_usd == 250000
    assert not tenants["interns"].can_borrow
    assert fleet.caps is not None and fleet.caps.share("aws") == 0.9
    assert not fleet.caps.binds("oci") and fleet.caps.min_fleet_gpus == 64
    assert fleet.borrowed == ()


def test_seed_scenario_is_500k_gpus_mostly_ultraservers() -> None:
    fleet = load_fleet(EXAMPLES / "seed-500k.yaml")
    s = fleet.summary()
    assert s["gpus"] == 500_000 and s["providers"] == 4
    assert s["nvl72_domains"] == 4_850
    by_provider = Counter({p.provider: 0 for p in fleet.pools})
    for p in fleet.pools:
        by_provider[p.provider] += p.max_gpus
    assert by_provider == {"aws": 300_800, "azure": 61_600, "gcp": 66_400, "oci": 71_200}
    ultra = sum(p.max_gpus for p in fleet.pools if p.instance_type == "u-p6e-gb200x72")
    assert ultra == 266_400 and ultra / s["gpus"] > 0.5
    assert all(p.domain_gpus == 72 for p in fleet.pools if p.instance_type == "u-p6e-gb200x72")
    cpu = [p for p in fleet.pools if p.accelerator is None]
    assert {p.provider for p in cpu} == {"aws", "azure", "gcp", "oci"}
    assert sum(p.max_nodes for p in cpu) == 5_000
    kinds = {p.pricing for p in fleet.pools}
    assert kinds == {PricingKind.RESERVED, PricingKind.ON_DEMAND, PricingKind.SPOT}
    # The two UltraServer regions the catalog lacks are the stated assumption.
    assert fleet.borrowed == (
        "aws/us-east-2/us-east-2a/u-p6e-gb200x72/reserved",
        "aws/us-west-2/us-west-2b/u-p6e-gb200x72/reserved",
    )
    # Every reserved pool is a block of exactly one contract of its provider.
    blocks = Counter(
        (c.provider, b.region, b.zone, b.instance_type) for c in fleet.contracts for b in c.blocks
    )
    reserved = [p for p in fleet.pools if p.pricing is PricingKind.RESERVED]
    assert sorted(blocks) == sorted(
        (p.provider, p.region, p.zone, p.instance_type) for p in reserved
    )
    assert set(blocks.values()) == {1}
    # Guarantees fit inside the reserved capacity of each accelerator.
    for acc in ("GB200", "H200", "H100"):
        held = sum(t.guaranteed_gpus.get(acc, 0) for t in fleet.tenants)
        assert 0 < held <= sum(p.max_gpus for p in reserved if p.accelerator == acc)


def test_committed_schema_is_current_and_documented() -> None:
    committed = json.loads(SCHEMA_PATH.read_text())
    assert committed == json_schema(), "run: python -m intercloud.twin.fleet_spec"
    assert committed["$schema"].endswith("2020-12/schema")
    models = ("PoolConfig", "ShapeSpec", "ContractConfig", "TenantConfig", "CapsConfig")
    for model in (*models, "ServiceConfig"):
        for name, prop in committed["$defs"][model]["properties"].items():
            assert prop.get("description"), f"{model}.{name} has no description"


BASE = """
name: t
providers:
  - name: aws
    regions:
      - name: us-east-1
        zones:
          - name: us-east-1a
            pools:
              - {POOL}
contracts:
  - {name: c1, provider: aws, start: 2026-01-01, end: 2027-01-01, usd_per_node_hour: 30}
"""
POOL0 = "providers[0].regions[0].zones[0].pools[0]"


def fleet_text(pool: str, extra: str = "") -> str:
    return BASE.replace("{POOL}", pool) + extra


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        (fleet_text("{instance_type: p5.48xlarge, pricing: reserved, nodes: 4}"),
         f"{POOL0}.contract", "a reserved pool must name its contract"),
        (fleet_text("{instance_type: p5.48xlarge, pricing: reserved, nodes: 4, contract: c2}"),
         f"{POOL0}.contract", "unknown contract 'c2' (contracts: c1)"),
        (fleet_text("{instance_type: p5.48xlarge, pricing: on_demand, nodes: 4, contract: c1}"),
         f"{POOL0}.contract", "only reserved or committed pools belong to a contract"),
        (fleet_text("{instance_type: p5.48xlarge, pricing: on_demand, nodes: 4}"),
         "contracts[0].name", "no pool names contract 'c1'"),
        (fleet_text("{instance_type: p5.48xlarge, pricing: on_demand, nodes: 4, domains: 1}"),
         POOL0, "give exactly one of nodes or domains"),
        (fleet_text("{instance_type: p5.48xlarge, pricing: on_demand}"),
         POOL0, "give exactly one of nodes or domains"),
        (fleet_text("{instance_type: u-p6e-gb200x72, pricing: reserved, nodes: 20, contract: c1}"),
         f"{POOL0}.nodes", "20 is not a whole number of NVLink domains (18 nodes each)"),
        (fleet_text("{instance_type: p9.huge, pricing: on_demand, nodes: 1}"),
         f"{POOL0}.instance_type", "p9.huge is not in the catalog for aws; give its shape"),
        (fleet_text("{instance_type: p9.huge, pricing: on_demand, nodes: 1, "
                    "shape: {accelerator: X1, gpus_per_node: 8, vcpus: 96, memory_gib: 1024}}"),
         f"{POOL0}.usd_per_node_hour", "p9.huge has no catalog price; give one"),
        (fleet_text("{instance_type: p9.huge, pricing: on_demand, nodes: 1, usd_per_node_hour: 1,"
                    " shape: {gpus_per_node: 8, vcpus: 96, memory_gib: 1024}}"),
         f"{POOL0}.shape", "accelerator and gpus_per_node > 0 go together"),
        (fleet_text("{instance_type: Standard_ND96isr_H100_v5, pricing: spot, nodes: 1}"),
         f"{POOL0}.instance_type", "is not in the catalog for aws"),
        (fleet_text("{instance_type: p5en.48xlarge, pricing: spot, nodes: -1}"),
         f"{POOL0}.nodes", "must be at least 1"),
        (fleet_text("{instance_type: p5.48xlarge, pricing: cheap, nodes: 1}"),
         f"{POOL0}.pricing", "expected 'reserved', 'committed', 'on_demand' or 'spot'"),
        (fleet_text("{instance_type: p5.48xlarge, pricing: spot, node: 1}"),
         f"{POOL0}.node", "unknown field; did you mean 'nodes'?"),
        (fleet_text("{instance_type: p5.48xlarge, pricing: reserved, nodes: 4, contract: c1, "
                    "usd_per_node_hour: 3}"),
         f"{POOL0}.usd_per_node_hour", "a reserved pool costs its contract's price"),
        (fleet_text("{instance_type: p5.48xlarge, pricing: reserved, nodes: 4, contract: c1}",
                    "tenants:\n  - {name: a, guaranteed_gpus: {B300: 8}}\n"),
         "tenants[0].guaranteed_gpus.B300", "no pool of the fleet has B300 GPUs (it has: H100)"),
        (fleet_text("{instance_type: p5.48xlarge, pricing: reserved, nodes: 4, contract: c1}",
                    "tenants:\n  - {name: a}\n  - {name: a}\n"),
         "tenants[1].name", "duplicate tenant 'a'"),
        (fleet_text("{instance_type: p5.48xlarge, pricing: reserved, nodes: 4, contract: c1}",
                    "caps: {max_share: {gcp: 0.5}}\n"),
         "caps.max_share.gcp", "no pool of the fleet is on gcp (providers: aws)"),
        (fleet_text("{instance_type: p5.48xlarge, pricing: reserved, nodes: 4, contract: c1}",
                    "caps: {max_share: 1.5}\n"),
         "caps.max_share", "a share must be in (0, 1], got 1.5"),
        (fleet_text("{instance_type: p5.48xlarge, pricing: reserved, nodes: 4, contract: c1}",
                    "caps: {max_share: {aws: 0}}\n"),
         "caps.max_share.aws", "a share must be in (0, 1], got 0"),
        (BASE.replace("{POOL}", "{instance_type: p5.48xlarge, pricing: reserved, nodes: 1, "
                      "contract: c1}\n              - {instance_type: p5.48xlarge, "
                      "pricing: reserved, nodes: 2, contract: c1}"),
         "providers[0].regions[0].zones[0].pools[1].instance_type",
         "a second reserved pool of p5.48xlarge in zone us-east-1a; merge them"),
        (BASE.replace("{POOL}", "{instance_type: p5.48xlarge, pricing: on_demand, nodes: 1}")
         .replace("end: 2027-01-01", "end: 2025-01-01"),
         "contracts[0]", "end 2025-01-01 must be after start 2026-01-01"),
        ("name: t\nproviders: []\n", "providers", "must have at least 1 item(s)"),
        ("- a\n", "(root)", "expected a mapping at the top level"),
        ("name: [\n", "(yaml)", "line"),
    ],
)  # fmt: skip
def test_bad_fleet_files_name_the_field(text: str, field: str, problem: str) -> None:
    with pytest.raises(FleetSpecError) as info:
        parse_fleet(text, source="f.yaml")
    err = info.value
    assert "\n" not in str(err)
    assert str(err).startswith(f"f.yaml: {field}:"), str(err)
    assert problem in err.problem, str(err)


def test_unreadable_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(FleetSpecError, match=r"absent\.yaml: \(file\): cannot read"):
        load_fleet(tmp_path / "absent.yaml")


def test_type_sold_only_in_another_zone_is_borrowed() -> None:
    # The catalog sells u-p6e-gb200x72 in us-east-1's Dallas Local Zone only.
    text = fleet_text("{instance_type: u-p6e-gb200x72, pricing: on_demand, domains: 2}")
    text = text.replace("contracts:\n  - {name: c1", "contracts: []\nunused:\n  - {name: c1")
    text = text.split("unused:")[0]
    fleet = parse_fleet(text)
    assert fleet.borrowed == ("aws/us-east-1/us-east-1a/u-p6e-gb200x72/on_demand",)
    assert fleet.pools[0].max_nodes == 36 and fleet.pools[0].domain_gpus == 72


def test_committed_pool_names_a_contract_without_being_its_block() -> None:
    text = fleet_text(
        "{instance_type: p5.48xlarge, pricing: reserved, nodes: 4, contract: c1}\n"
        "              - {instance_type: p5.48xlarge, pricing: committed, nodes: 8, "
        "contract: c1, usd_per_node_hour: 40}"
    )
    fleet = parse_fleet(text)
    committed = [p for p in fleet.pools if p.pricing is PricingKind.COMMITTED]
    assert [(p.contract, p.usd_per_node_hour, p.max_nodes) for p in committed] == [("c1", 40, 8)]
    (contract,) = fleet.contracts
    assert [b.nodes for b in contract.blocks] == [4]


def test_readme_example_loads() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Fleet description", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    fleet = parse_fleet(block, source="README.md")
    assert fleet.gpus == 256 + 64 + 72
    assert fleet.tenants[0].monthly_budget_usd == 900000
