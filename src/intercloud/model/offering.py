"""An offering: one instance type sold in one place at one price."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Offering:
    """One purchasable instance type in one provider location.

    Counting follows SkyPilot: ``accelerator_count`` is GPUs per instance. An NVLink
    domain spans ``instances_per_domain`` instances and ``nvlink_domain_gpus`` GPUs
    (an HGX server: 1 instance, 8 GPUs; a u-p6e-gb200x72 UltraServer: 18 instances of
    4 GPUs, 72 GPUs). Prices are USD per instance-hour; ``spot_price`` is None where
    the provider sells no spot for it. ``zone`` is "" when the provider prices by region.
    ``machines``: for a provider that knows its free capacity, how many identical
    machines of this shape it has (a cluster's nodes: Ray, Slurm); every other field
    describes one of them, and a gang's ranks take one machine each.
    """

    provider: str
    region: str
    zone: str
    instance_type: str
    accelerator: str | None
    accelerator_count: int
    vcpus: float
    memory_gib: float
    on_demand_price: float
    spot_price: float | None = None
    nvlink_domain_gpus: int = 0
    instances_per_domain: int = 1
    network_gbps: float = 0.0
    fabric: str = ""
    egress_usd_per_gb: float = 0.0
    arch: str = "x86_64"
    machines: int = 1

    @property
    def is_gpu(self) -> bool:
        return self.accelerator is not None and self.accelerator_count > 0
