"""Synthetic fleets and tenants for the twin and the benchmarks.

``synthetic_fleet(total_gpus, seed)`` lays out a multi-cloud GPU fleet on the real shapes
and prices of the bundled catalog (``intercloud.catalog.load_bundled``):

* every bundled offering of an 8-GPU HGX server (H100, H200, B200, A100, A100-80GB:
  p5/p5en/p6-b200/p4d/p4de, ND H100/H200/A100 v5/v4, a3/a4/a2, BM.GPU.*) and of a GB200
  NVL72 rack (18 nodes of 4 GPUs in one NVLink domain: u-p6e-gb200x72,
  ND128isr GB200 v6, a4x-highgpu-4g, BM.GPU.GB200.4) in each of its regions;
* two or three zones per region (named the provider's way);
* per zone and offering an on-demand pool (elastic: grows to a quota after a provisioning
  delay) and, where the catalog lists a spot price, a spot pool (elastic, shorter delay);
* reserved pools (fixed size) for a seeded subset, grouped into a few ``Contract``s per
  provider at a discount to list price; the pool's price is the contract's.

Capacity (``max_nodes``: the fixed size of a reserved pool, the quota of an elastic one)
is split about 45% reserved, 35% on-demand, 20% spot, weighted by accelerator (H100 and
H200 most, then B200, GB200, A100) and summed to exactly ``total_gpus`` when it is a
multiple of 8 (NVL72 pools hold whole racks). Everything is deterministic for a seed.

``synthetic_tenants(n, seed, pools)``: teams with fair-share weights, guaranteed GPUs per
accelerator summing to a fraction of the reserved capacity, and monthly budgets for some.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from intercloud.catalog.bundled import load_bundled
from intercloud.model import Contract, Offering, PricingKind, ReservedBlock
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.requests import TenantSpec

PROVIDERS = ("aws", "azure", "gcp", "oci")
HGX_ACCELERATORS = ("H100", "H200", "B200", "A100", "A100-80GB")
NVL72_ACCELERATORS = ("GB200",)
# Relative share of capacity per accelerator (per offering-zone, before normalising).
ACCELERATOR_WEIGHT: Mapping[str, float] = {
    "H100": 1.0,
    "H200": 1.2,
    "B200": 1.6,
    "GB200": 5.0,
    "A100": 0.5,
    "A100-80GB": 0.5,
}
PRICING_SHARE: Mapping[PricingKind, float] = {
    PricingKind.RESERVED: 0.45,
    PricingKind.ON_DEMAND: 0.35,
    PricingKind.SPOT: 0.20,
}
CONTRACT_START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _Slot:
    offering: Offering
    zone: str
    pricing: PricingKind
    weight: float


def fleet_offerings() -> list[Offering]:
    """The bundled offerings a synthetic fleet is built from (HGX 8-GPU, GB200 NVL72)."""
    out = []
    for o in load_bundled().offerings:
        if o.provider not in PROVIDERS or o.accelerator is None:
            continue
        hgx = (
            o.accelerator in HGX_ACCELERATORS
            and o.accelerator_count == 8
            and o.instances_per_domain == 1
        )
        nvl72 = (
            o.accelerator in NVL72_ACCELERATORS
            and o.accelerator_count == 4
            and o.instances_per_domain == 18
        )
        if hgx or nvl72:
            out.append(o)
    return sorted(out, key=lambda o: (o.provider, o.region, o.instance_type))


def zone_names(provider: str, region: str, n: int) -> list[str]:
    """``n`` zone names in the provider's own style."""
    if provider == "aws":
        return [f"{region}{c}" for c in "abcdef"[:n]]
    if provider == "gcp":
        return [f"{region}-{c}" for c in "abcdef"[:n]]
    if provider == "azure":
        return [f"{region}-{i}" for i in range(1, n + 1)]
    return [f"{region}-AD-{i}" for i in range(1, n + 1)]


def _nodes_per_unit(o: Offering) -> int:
    """Pools grow in whole NVLink domains: 18 nodes for an NVL72 rack, 1 for HGX."""
    return max(1, o.instances_per_domain)


def synthetic_fleet(
    total_gpus: int = 500_000, seed: int = 0
) -> tuple[list[PoolSpec], list[Contract]]:
    """Pools and the contracts that own the reserved ones (see the module docstring)."""
    if total_gpus < 1_000:
        raise ValueError(f"total_gpus must be >= 1000 (got {total_gpus})")
    rng = random.Random(seed)
    offerings = fleet_offerings()
    regions = sorted({(o.provider, o.region) for o in offerings})
    zones = {pr: zone_names(pr[0], pr[1], rng.choice((2, 3, 3))) for pr in regions}
    slots: list[_Slot] = []
    for o in offerings:
        base = ACCELERATOR_WEIGHT[o.accelerator or ""] * rng.uniform(0.5, 1.5)
        for z in zones[(o.provider, o.region)]:
            zw = base * rng.uniform(0.6, 1.4)
            kinds = [PricingKind.ON_DEMAND]
            if o.spot_price is not None:
                kinds.append(PricingKind.SPOT)
            if rng.random() < 0.6 or o.accelerator in NVL72_ACCELERATORS:
                kinds.append(PricingKind.RESERVED)
            for k in kinds:
                slots.append(_Slot(o, z, k, zw * rng.uniform(0.7, 1.3)))
    # Normalise weights within each pricing kind to its share of the GPUs.
    target = total_gpus - total_gpus % 8
    nodes: list[int] = []
    for s in slots:
        kind_total = sum(x.weight for x in slots if x.pricing is s.pricing)
        share = PRICING_SHARE[s.pricing] * s.weight / kind_total
        unit = _nodes_per_unit(s.offering)
        unit_gpus = unit * s.offering.accelerator_count
        nodes.append(max(1, round(share * target / unit_gpus)) * unit)
    # Fix the total on the HGX pools, largest first (8 GPUs a node; an NVL72 rack is 9 x 8).
    gpus = sum(n * s.offering.accelerator_count for n, s in zip(nodes, slots, strict=True))
    diff = (target - gpus) // 8
    hgx = sorted(
        (i for i, s in enumerate(slots) if s.offering.instances_per_domain == 1),
        key=lambda i: -nodes[i],
    )
    if diff > 0:
        nodes[hgx[0]] += diff
    for i in hgx:
        if diff >= 0:
            break
        cut = min(-diff, nodes[i] - 1)
        nodes[i] -= cut
        diff += cut
    if diff < 0:
        raise ValueError(f"total_gpus {total_gpus} is too small for the fleet's shape")

    contracts = _contracts(slots, nodes, rng)
    by_slot = {(c_slot, c.name) for c in contracts for c_slot in _contract_slots(c)}
    owner = {key: name for key, name in by_slot}
    pools: list[PoolSpec] = []
    for s, n in zip(slots, nodes, strict=True):
        o = s.offering
        contract = None
        price = o.on_demand_price
        delay = 0.0
        if s.pricing is PricingKind.RESERVED:
            contract = owner[(o.provider, o.region, s.zone, o.instance_type)]
            price = next(c.usd_per_node_hour for c in contracts if c.name == contract)
        elif s.pricing is PricingKind.SPOT:
            price = o.spot_price or o.on_demand_price
            delay = float(rng.choice((60, 120, 180, 300)))
        else:
            delay = float(rng.choice((300, 600, 900)) * (2 if o.instances_per_domain > 1 else 1))
        pools.append(
            PoolSpec(
                provider=o.provider,
                region=o.region,
                zone=s.zone,
                instance_type=o.instance_type,
                pricing=s.pricing,
                accelerator=o.accelerator,
                gpus_per_node=o.accelerator_count,
                vcpus_per_node=o.vcpus,
                memory_gib_per_node=o.memory_gib,
                nodes_per_domain=max(1, o.instances_per_domain),
                max_nodes=n,
                usd_per_node_hour=round(price, 4),
                provision_delay_s=delay,
                contract=contract,
                egress_usd_per_gb=o.egress_usd_per_gb,
            )
        )
    return pools, contracts


def _contract_slots(c: Contract) -> list[tuple[str, str, str, str]]:
    return [(c.provider, b.region, b.zone, b.instance_type) for b in c.blocks]


def _contracts(slots: Sequence[_Slot], nodes: Sequence[int], rng: random.Random) -> list[Contract]:
    """Group each provider's reserved slots into 2-3 contracts (by instance type family),
    each at one discounted price per node-hour (the mean list price of its blocks times a
    seeded 0.45-0.65)."""
    out: list[Contract] = []
    for provider in PROVIDERS:
        mine = [
            (s, n)
            for s, n in zip(slots, nodes, strict=True)
            if s.pricing is PricingKind.RESERVED and s.offering.provider == provider
        ]
        if not mine:
            continue
        groups: dict[str, list[tuple[_Slot, int]]] = {}
        for s, n in mine:
            groups.setdefault(s.offering.instance_type, []).append((s, n))
        k = min(len(groups), rng.choice((2, 3)))
        buckets: list[list[tuple[_Slot, int]]] = [[] for _ in range(k)]
        for i, itype in enumerate(sorted(groups)):
            buckets[i % k].extend(groups[itype])
        for j, bucket in enumerate(buckets):
            list_price = sum(s.offering.on_demand_price for s, _ in bucket) / len(bucket)
            years = rng.choice((1, 2, 3))
            out.append(
                Contract(
                    name=f"{provider}-reserved-{j + 1}",
                    provider=provider,
                    blocks=tuple(
                        ReservedBlock(s.offering.region, s.zone, s.offering.instance_type, n)
                        for s, n in bucket
                    ),
                    start=CONTRACT_START,
                    end=CONTRACT_START.replace(year=CONTRACT_START.year + years),
                    usd_per_node_hour=round(list_price * rng.uniform(0.45, 0.65), 4),
                )
            )
    return out


def fleet_summary(pools: Sequence[PoolSpec]) -> dict[str, int]:
    """Counts worth printing: GPUs, nodes, pools, providers, regions, zones, domains."""
    return {
        "gpus": sum(p.max_gpus for p in pools),
        "nodes": sum(p.max_nodes for p in pools),
        "pools": len(pools),
        "providers": len({p.provider for p in pools}),
        "regions": len({(p.provider, p.region) for p in pools}),
        "zones": len({(p.provider, p.zone) for p in pools}),
        "nvl72_domains": sum(
            p.max_nodes // p.nodes_per_domain for p in pools if p.nodes_per_domain > 1
        ),
        "reserved_gpus": sum(p.max_gpus for p in pools if p.pricing is PricingKind.RESERVED),
        "on_demand_gpus": sum(p.max_gpus for p in pools if p.pricing is PricingKind.ON_DEMAND),
        "spot_gpus": sum(p.max_gpus for p in pools if p.pricing is PricingKind.SPOT),
    }


def synthetic_tenants(
    n: int = 100,
    seed: int = 0,
    pools: Sequence[PoolSpec] | None = None,
    guaranteed_fraction: float = 0.6,
) -> list[TenantSpec]:
    """``n`` teams. Weights are 1, 2, 4 or 8 (most 1 or 2). Guarantees: each team is
    guaranteed GPUs of one to three accelerator types, in proportion to its weight, so
    that over all teams the guarantees of an accelerator sum to ``guaranteed_fraction``
    of its reserved capacity in ``pools`` (default: a 500k-GPU ``synthetic_fleet``). A
    third of the teams have a monthly budget (about 1.5x their guarantee at on-demand
    price); a tenth may not borrow beyond their guarantee."""
    if n < 1:
        raise ValueError(f"n must be >= 1 (got {n})")
    if not 0.0 <= guaranteed_fraction <= 1.0:
        raise ValueError(f"guaranteed_fraction must be in [0, 1] (got {guaranteed_fraction})")
    if pools is None:
        pools = synthetic_fleet(seed=seed)[0]
    rng = random.Random(seed + 1)
    reserved: dict[str, int] = {}
    gpu_price: dict[str, list[float]] = {}
    for p in pools:
        if p.accelerator is None:
            continue
        if p.pricing is PricingKind.RESERVED:
            reserved[p.accelerator] = reserved.get(p.accelerator, 0) + p.max_gpus
        elif p.pricing is PricingKind.ON_DEMAND:
            gpu_price.setdefault(p.accelerator, []).append(p.usd_per_node_hour / p.gpus_per_node)
    accels = sorted(reserved)
    weights = [float(rng.choice((1, 1, 1, 2, 2, 4, 8))) for _ in range(n)]
    picks = [rng.sample(accels, min(len(accels), rng.choice((1, 2, 3)))) for _ in range(n)]
    guaranteed: list[dict[str, int]] = [{} for _ in range(n)]
    for a in accels:
        holders = [i for i in range(n) if a in picks[i]]
        total_w = sum(weights[i] for i in holders)
        budget = int(reserved[a] * guaranteed_fraction)
        for i in holders:
            guaranteed[i][a] = int(budget * weights[i] / total_w)
    out = []
    for i in range(n):
        g = guaranteed[i]
        monthly = None
        if rng.random() < 1 / 3:
            usd_h = sum(
                cnt * sum(gpu_price.get(a, [4.0])) / len(gpu_price.get(a, [4.0]))
                for a, cnt in g.items()
            )
            monthly = round(max(10_000.0, 1.5 * usd_h * 730.0), 2)
        out.append(
            TenantSpec(
                name=f"tenant-{i:03d}",
                weight=weights[i],
                guaranteed_gpus=dict(sorted(g.items())),
                can_borrow=rng.random() >= 0.1,
                monthly_budget_usd=monthly,
            )
        )
    return out
