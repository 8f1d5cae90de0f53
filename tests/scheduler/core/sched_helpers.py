"""Small fleets and queues for the fleet scheduler's tests."""

from __future__ import annotations

from intercloud.model import PricingKind
from intercloud.scheduler.fleet.pools import PoolSpec


def pool(
    accelerator: str | None = "H100",
    gpus: int = 8,
    nodes: int = 4,
    npd: int = 1,
    pricing: PricingKind = PricingKind.ON_DEMAND,
    price: float = 10.0,
    provider: str = "aws",
    region: str = "us-east-1",
    zone: str = "a",
    delay: float = 0.0,
) -> PoolSpec:
    return PoolSpec(
        provider=provider,
        region=region,
        zone=zone,
        instance_type=f"{accelerator or 'cpu'}x{gpus}",
        pricing=pricing,
        accelerator=accelerator,
        gpus_per_node=gpus,
        vcpus_per_node=96.0,
        memory_gib_per_node=512.0,
        nodes_per_domain=npd,
        max_nodes=nodes,
        usd_per_node_hour=price,
        provision_delay_s=delay,
    )
