"""A synthetic batch for measuring the greedy path against the MILP optimum.

``synthetic_batch(n_jobs, n_pools, seed)`` builds the setting the benchmark asks for:
the cheapest pools can hold at most half of the demand, and at least one diversification
cap binds. Pools span four providers, a few regions each, three accelerators and every
pricing kind (reserved pools under an active contract, committed, on-demand, spot).
Jobs mix gang sizes (1 to 64 GPUs), accelerator alternatives, spot policies, provider
filters and preferences, NVLink gangs, and input data that lives on one provider.

"Cheapest pools": for each accelerator, the pools whose price per GPU-hour is within 10%
of the lowest (reserved pools count as price zero). Their free GPUs are scaled down to
at most half of the GPUs demanded of that accelerator. The fleet already runs ``G``
GPUs, most of them on the cheapest provider, whose share cap is set just above its
current share so that the batch can add only a little there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from intercloud.model import Contract, PricingKind, ReservedBlock, SpotPolicy, Topology
from intercloud.scheduler.cost.caps import DiversificationCaps
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.optimizer.milp import FleetUsage
from intercloud.scheduler.requests import GangRequest

_PROVIDERS = ("aws", "azure", "gcp", "oci")
_PROVIDER_FACTOR = {"aws": 1.0, "azure": 0.97, "gcp": 1.03, "oci": 0.85}
_REGIONS = ("us-east", "us-west", "eu-west", "ap-south")
_ACCS = {"H100": 8.0, "A100": 4.0, "L4": 0.9}  # list USD per GPU-hour, on demand
_KIND_FACTOR = {
    PricingKind.ON_DEMAND: 1.0,
    PricingKind.COMMITTED: 0.8,
    PricingKind.SPOT: 0.45,
    PricingKind.RESERVED: 0.6,
}
NOW = datetime(2026, 1, 15, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SyntheticBatch:
    """Everything ``solve_batch`` / ``greedy_batch`` take, plus what the batch promises:
    ``cheap_share`` (max over accelerators of cheapest-pool GPUs / demanded GPUs) and
    ``capped_provider`` (the provider whose cap binds)."""

    requests: tuple[GangRequest, ...]
    pools: tuple[PoolSpec, ...]
    contracts: tuple[Contract, ...]
    free_gpus: npt.NDArray[np.float64]
    free_domains: npt.NDArray[np.float64]
    caps: DiversificationCaps
    usage: FleetUsage
    now_s: float
    cheap_share: float
    capped_provider: str


def synthetic_batch(n_jobs: int = 1000, n_pools: int = 200, seed: int = 0) -> SyntheticBatch:
    rng = np.random.default_rng(seed)
    kinds = (
        PricingKind.ON_DEMAND,
        PricingKind.ON_DEMAND,
        PricingKind.SPOT,
        PricingKind.COMMITTED,
        PricingKind.RESERVED,
    )
    pools: list[PoolSpec] = []
    contracts: list[Contract] = []
    start, end = datetime(2025, 6, 1, tzinfo=UTC), datetime(2027, 6, 1, tzinfo=UTC)
    for i in range(n_pools):
        prov = _PROVIDERS[i % len(_PROVIDERS)]
        region = _REGIONS[(i // len(_PROVIDERS)) % len(_REGIONS)]
        acc = tuple(_ACCS)[(i // 16) % len(_ACCS)]
        kind = kinds[int(rng.integers(len(kinds)))]
        gpn = 8 if acc != "L4" else 4
        nvl72 = acc == "H100" and rng.random() < 0.15
        gpn = 4 if nvl72 else gpn
        npd = 18 if nvl72 else 1
        noise = float(rng.uniform(0.95, 1.1))
        price = _ACCS[acc] * _PROVIDER_FACTOR[prov] * _KIND_FACTOR[kind] * noise * gpn
        nodes = int(rng.integers(10, 60)) * npd
        contract = None
        if kind == PricingKind.RESERVED:
            contract = f"c{i}"
            block = ReservedBlock(region, f"{region}-a", f"{acc}x{gpn}", nodes)
            contracts.append(Contract(contract, prov, (block,), start, end, price))
        pools.append(
            PoolSpec(
                provider=prov,
                region=region,
                zone=f"{region}-{'abc'[i % 3]}",
                instance_type=f"{acc}x{gpn}{'-nvl72' if nvl72 else ''}",
                pricing=kind,
                accelerator=acc,
                gpus_per_node=gpn,
                vcpus_per_node=96.0,
                memory_gib_per_node=1024.0,
                nodes_per_domain=npd,
                max_nodes=nodes,
                usd_per_node_hour=round(price, 4),
                contract=contract,
            )
        )

    requests: list[GangRequest] = []
    acc_choices: tuple[tuple[str, ...], ...] = (("H100",), ("A100",), ("L4",), ("H100", "A100"))
    for j in range(n_jobs):
        accs = acc_choices[int(rng.choice(4, p=[0.4, 0.25, 0.2, 0.15]))]
        gpn = int(rng.choice([1, 2, 4, 8], p=[0.3, 0.15, 0.25, 0.3]))
        if "L4" in accs:
            gpn = min(gpn, 4)
        nodes = int(rng.choice([1, 1, 1, 2, 4, 8])) if gpn >= 4 else 1
        spot = (SpotPolicy.NEVER, SpotPolicy.ALLOWED, SpotPolicy.ONLY)[
            int(rng.choice(3, p=[0.6, 0.3, 0.1]))
        ]
        data = rng.random() < 0.3
        dprov = _PROVIDERS[int(rng.integers(len(_PROVIDERS)))] if data else None
        requests.append(
            GangRequest(
                job_id=j,
                tenant=f"team{j % 5}",
                nodes=nodes,
                gpus_per_node=gpn,
                accelerators=accs,
                submit_s=float(j),
                topology=Topology.NVLINK_DOMAIN if rng.random() < 0.1 else Topology.ANY,
                spot=spot,
                providers=(
                    frozenset(rng.choice(_PROVIDERS, 3, replace=False).tolist())
                    if rng.random() < 0.1
                    else None
                ),
                provider_preference=("aws",) if rng.random() < 0.2 else (),
                duration_s=float(rng.uniform(1, 48)) * 3600.0,
                data_provider=dprov,
                data_region=_REGIONS[int(rng.integers(len(_REGIONS)))] if data else None,
                data_gb=float(rng.uniform(100, 5000)) if data else 0.0,
            )
        )

    # Free capacity: every pool's max_nodes; the cheapest pools scaled to <= 1/2 of demand.
    gpn_arr = np.array([p.gpus_per_node for p in pools], np.float64)
    free_nodes = np.array([p.max_nodes for p in pools], np.float64)
    per_gpu = np.array(
        [
            0.0 if p.pricing == PricingKind.RESERVED else p.usd_per_node_hour / p.gpus_per_node
            for p in pools
        ]
    )
    cheap_share = 0.0
    for acc in _ACCS:
        mine = np.array([p.accelerator == acc for p in pools])
        demand = sum(r.gpus / len(r.accelerators) for r in requests if acc in r.accelerators)
        od = mine & (per_gpu > 0)
        lowest = per_gpu[od].min() if od.any() else 0.0
        cheap = mine & (per_gpu <= lowest * 1.1)
        have = float((free_nodes[cheap] * gpn_arr[cheap]).sum())
        if have > 0.5 * demand:
            per_domain = np.array([p.nodes_per_domain for p in pools], np.float64)
            scaled = np.floor(free_nodes * 0.5 * demand / have / per_domain) * per_domain
            free_nodes[cheap] = scaled[cheap]
            have = float((free_nodes[cheap] * gpn_arr[cheap]).sum())
        cheap_share = max(cheap_share, have / demand if demand else 0.0)
    free_gpus = free_nodes * gpn_arr
    npd_arr = np.array([p.nodes_per_domain for p in pools], np.float64)
    free_domains = np.floor(free_nodes / npd_arr)

    # The fleet before the batch: G GPUs, the cheapest provider near its cap.
    total = 2.0 * float(sum(r.gpus for r in requests))
    capped_provider = "oci"
    oci_now = 0.34 * total
    usage = FleetUsage(
        total_gpus=total, capped_gpus={"oci": oci_now, "aws": 0.2 * total, "gcp": 0.1 * total}
    )
    caps = DiversificationCaps({"oci": 0.35, "aws": 0.5, "azure": 0.5, "gcp": 0.5}, 1000)
    return SyntheticBatch(
        requests=tuple(requests),
        pools=tuple(pools),
        contracts=tuple(contracts),
        free_gpus=free_gpus,
        free_domains=free_domains,
        caps=caps,
        usage=usage,
        now_s=NOW.timestamp(),
        cheap_share=cheap_share,
        capped_provider=capped_provider,
    )
