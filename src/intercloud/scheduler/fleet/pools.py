"""Capacity pools: the unit the fleet scheduler reasons about.

A pool is (provider, region, zone, instance type, pricing kind). Reserved pools are fixed
in size and belong to a contract (marginal cost zero while it runs); on-demand and spot
pools are elastic: they grow up to ``max_nodes`` (the quota), new nodes become usable
``provision_delay_s`` after they are requested, a request may fail for lack of capacity,
and idle nodes are released.
"""

from __future__ import annotations

from dataclasses import dataclass

from intercloud.model import PricingKind


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """One pool. ``nodes_per_domain`` instances share an NVLink domain (1 for an HGX
    server, 18 for an NVL72 rack of 4-GPU nodes); domains never span pools.
    ``usd_per_node_hour`` is the list price (reserved pools: the contract's price; their
    marginal cost is zero while the contract is active). ``window``: a reserved block's
    own ``(start, end)`` in POSIX seconds, when it is usable (None: its contract's
    term); ``ends_hard``: its nodes are stopped at the window's end (a Capacity Block,
    whose end is already 30 minutes before the block's), so a gang that cannot finish
    or checkpoint by then is never placed there."""

    provider: str
    region: str
    zone: str
    instance_type: str
    pricing: PricingKind
    accelerator: str | None
    gpus_per_node: int
    vcpus_per_node: float
    memory_gib_per_node: float
    nodes_per_domain: int
    max_nodes: int
    usd_per_node_hour: float
    provision_delay_s: float = 0.0
    contract: str | None = None
    egress_usd_per_gb: float = 0.0
    window: tuple[float, float] | None = None
    ends_hard: bool = False

    @property
    def key(self) -> str:
        return "/".join(
            (self.provider, self.region, self.zone, self.instance_type, self.pricing.value)
        )

    @property
    def elastic(self) -> bool:
        return self.pricing in (PricingKind.ON_DEMAND, PricingKind.SPOT)

    @property
    def domain_gpus(self) -> int:
        return self.gpus_per_node * self.nodes_per_domain

    @property
    def max_gpus(self) -> int:
        return self.gpus_per_node * self.max_nodes
