"""PreFilter/Filter: the pools of the fleet that could ever take a gang, and if none, why.

Static: it depends on the pool specs and the request's shape, never on what is free, so
the scheduler caches it per shape (``shape_key``). Pools pass the funnel of
``reasons.Stage`` in order (provider, accelerator and node shape, NVLink domain, region,
spot, hourly cap); when no pool passes, the reason is that of the stage where the
furthest pool stopped, in the planner's words.

Topology: a gang always lies inside one pool (one zone, one instance type, one pricing
kind), which satisfies the ``zone``, ``region`` and ``any`` levels at once; an
``nvlink_domain`` gang of several nodes must also fit one NVLink domain of its pool
(``nodes <= nodes_per_domain``), and ``pick`` keeps it inside one.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from intercloud.model import SpotPolicy, Topology
from intercloud.model.pricing import PricingKind
from intercloud.scheduler import reasons
from intercloud.scheduler.fleet.state import FleetState
from intercloud.scheduler.placement.order import marginal_usd_per_hour
from intercloud.scheduler.reasons import Stage
from intercloud.scheduler.requests import GangRequest


@dataclass(frozen=True, slots=True)
class Candidates:
    """Pools that could take the gang (unordered: pool index order), or ``reason``."""

    pools: tuple[int, ...]
    reason: str = ""


def shape_key(r: GangRequest) -> Hashable:
    """Everything of a request that ``candidate_pools`` looks at."""
    return (
        r.nodes,
        r.gpus_per_node,
        r.accelerators,
        r.vcpus_per_node,
        r.topology,
        r.spot,
        r.providers,
        r.regions,
        r.max_usd_per_hour,
    )


def needs_domain(r: GangRequest) -> bool:
    """Whether the gang must sit inside one NVLink domain spanning several nodes."""
    return r.topology == Topology.NVLINK_DOMAIN and r.nodes > 1


def _wrong_accelerator(r: GangRequest, accelerator: str | None) -> bool:
    if r.accelerators:
        return accelerator not in r.accelerators
    return accelerator is not None


def candidate_pools(state: FleetState, r: GangRequest) -> Candidates:
    label = reasons.gang_label(r.accelerators, r.gpus_per_node, r.nodes)
    out: list[int] = []
    furthest = Stage.NOT_ENABLED
    largest_domain = 0
    cheapest = float("inf")
    has: set[str] = set()
    for p, s in enumerate(state.pools):
        stage = Stage.FEASIBLE
        if r.providers is not None and s.provider not in r.providers:
            stage = Stage.NOT_ALLOWED_PROVIDER
        elif (
            (s.accelerator not in r.accelerators) if r.accelerators else bool(s.accelerator)
        ) or r.gpus_per_node > s.gpus_per_node:
            stage = Stage.ACCELERATOR
        elif r.vcpus_per_node > s.vcpus_per_node:
            stage = Stage.CPUS
        elif needs_domain(r) and r.nodes > s.nodes_per_domain:
            stage = Stage.NVLINK_DOMAIN
        elif r.regions is not None and s.region not in r.regions:
            stage = Stage.REGION
        elif (r.spot == SpotPolicy.NEVER and s.pricing == PricingKind.SPOT) or (
            r.spot == SpotPolicy.ONLY and s.pricing != PricingKind.SPOT
        ):
            stage = Stage.SPOT
        elif (
            r.max_usd_per_hour is not None
            and marginal_usd_per_hour(s, r.nodes) > r.max_usd_per_hour + 1e-9
        ):
            stage = Stage.MAX_HOURLY
        if s.accelerator:
            has.add(f"{s.accelerator}:{s.gpus_per_node}")
        if stage >= Stage.NVLINK_DOMAIN:
            largest_domain = max(largest_domain, s.domain_gpus)
        if stage >= Stage.MAX_HOURLY:
            cheapest = min(cheapest, marginal_usd_per_hour(s, r.nodes))
        furthest = max(furthest, stage)
        if stage == Stage.FEASIBLE and r.nodes <= s.max_nodes:
            out.append(p)
    if out:
        return Candidates(tuple(out))
    return Candidates((), _reason(furthest, r, label, largest_domain, cheapest, sorted(has)))


def _reason(
    stage: Stage,
    r: GangRequest,
    label: str,
    largest_domain: int,
    cheapest: float,
    has: list[str],
) -> str:
    want = [f"{a}:{r.gpus_per_node}" for a in r.accelerators]
    if stage == Stage.FEASIBLE:
        return reasons.no_pool(label)
    if stage <= Stage.NOT_ALLOWED_PROVIDER:
        return reasons.NOT_ALLOWED_PROVIDER
    if stage <= Stage.ACCELERATOR:
        return reasons.no_accelerator(want, has)
    if stage <= Stage.MEMORY:
        return reasons.too_few_cpus(r.vcpus_per_node, exact=False)
    if stage <= Stage.NVLINK_DOMAIN:
        return reasons.no_nvlink_domain(r.gpus, " or ".join(want), largest_domain)
    if stage <= Stage.ZONE:
        return reasons.NO_REGION
    if stage <= Stage.SPOT:
        return reasons.no_spot(" or ".join(want) or "CPU")
    return reasons.over_budget(r.max_usd_per_hour or 0.0, cheapest)
