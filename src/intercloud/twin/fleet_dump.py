"""A fleet written back as a fleet file: the inverse of ``fleet_spec.parse_fleet``.

    text = dump_fleet(Fleet("synthetic", "", tuple(pools), tuple(contracts), tuple(tenants), None))
    Path("fleet.yaml").write_text(text)

Contract: ``parse_fleet(dump_fleet(f))`` gives the same pools (grouped by provider,
region and zone in first-seen order, so possibly reordered), contracts (the same blocks),
tenants and caps as ``f``, so any fleet built in code (``twin.fleets.
synthetic_fleet``) can be saved, read and edited as YAML. Every pool's price and
provisioning delay are written out (the file does not depend on the catalog's prices
staying the same); a pool's ``shape`` only where the catalog's row differs from it or
is missing.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import yaml

from intercloud.catalog.bundled import load_bundled
from intercloud.catalog.catalog import Catalog
from intercloud.model import PricingKind
from intercloud.scheduler.cost.caps import DiversificationCaps
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.twin.fleet_spec import Fleet, catalog_index, catalog_row


def _number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def _pool(p: PoolSpec, index: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"instance_type": p.instance_type, "pricing": p.pricing.value}
    if p.nodes_per_domain > 1:
        out["domains"] = p.max_nodes // p.nodes_per_domain
    else:
        out["nodes"] = p.max_nodes
    if p.contract is not None:
        out["contract"] = p.contract
    if p.pricing is not PricingKind.RESERVED:
        out["usd_per_node_hour"] = _number(p.usd_per_node_hour)
    out["provision_delay_s"] = _number(p.provision_delay_s)
    row, _ = catalog_row(index, p.provider, p.region, p.zone, p.instance_type)
    same = row is not None and (
        row.accelerator,
        row.accelerator_count,
        row.vcpus,
        row.memory_gib,
        max(1, row.instances_per_domain),
    ) == (
        p.accelerator,
        p.gpus_per_node,
        p.vcpus_per_node,
        p.memory_gib_per_node,
        p.nodes_per_domain,
    )
    if p.egress_usd_per_gb != (row.egress_usd_per_gb if row is not None else 0.0):
        out["egress_usd_per_gb"] = _number(p.egress_usd_per_gb)
    if not same:
        shape: dict[str, Any] = {
            "gpus_per_node": p.gpus_per_node,
            "vcpus": _number(p.vcpus_per_node),
            "memory_gib": _number(p.memory_gib_per_node),
            "nodes_per_domain": p.nodes_per_domain,
        }
        if p.accelerator is not None:
            shape = {"accelerator": p.accelerator, **shape}
        out["shape"] = shape
    return out


def _caps(caps: DiversificationCaps, providers: list[str]) -> dict[str, Any]:
    shares = {p: caps.share(p) for p in providers if caps.binds(p)}
    return {"max_share": shares, "min_fleet_gpus": caps.min_fleet_gpus}


def fleet_document(fleet: Fleet, catalog: Catalog | None = None) -> dict[str, Any]:
    """The fleet as the plain data of a fleet file (see the module docstring)."""
    index = catalog_index(catalog if catalog is not None else load_bundled())
    tree: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {}
    for p in fleet.pools:
        zones = tree.setdefault(p.provider, {}).setdefault(p.region, {})
        zones.setdefault(p.zone, []).append(_pool(p, index))
    doc: dict[str, Any] = {"name": fleet.name}
    if fleet.description:
        doc["description"] = fleet.description
    doc["providers"] = [
        {
            "name": provider,
            "regions": [
                {
                    "name": region,
                    "zones": [{"name": z, "pools": pools} for z, pools in zones.items()],
                }
                for region, zones in regions.items()
            ],
        }
        for provider, regions in tree.items()
    ]
    if fleet.contracts:
        doc["contracts"] = [
            {
                "name": c.name,
                "provider": c.provider,
                "start": c.start.date(),
                "end": c.end.date(),
                "usd_per_node_hour": _number(c.usd_per_node_hour),
            }
            for c in fleet.contracts
        ]
    if fleet.tenants:
        doc["tenants"] = [
            {
                "name": t.name,
                "weight": _number(t.weight),
                "guaranteed_gpus": dict(t.guaranteed_gpus),
                "can_borrow": t.can_borrow,
                **(
                    {"monthly_budget_usd": _number(t.monthly_budget_usd)}
                    if t.monthly_budget_usd is not None
                    else {}
                ),
            }
            for t in fleet.tenants
        ]
    if fleet.caps is not None:
        doc["caps"] = _caps(fleet.caps, list(tree))
    if fleet.services:
        doc["services"] = [
            {k: _number(v) if isinstance(v, float) else v for k, v in asdict(s).items()}
            for s in fleet.services
        ]
    return doc


def dump_fleet(fleet: Fleet, catalog: Catalog | None = None) -> str:
    """``fleet_document`` as YAML text (block style, keys in the schema's order)."""
    text: str = yaml.safe_dump(
        fleet_document(fleet, catalog), sort_keys=False, default_flow_style=False, width=100
    )
    return text
