"""From a job's stored placement to the provider calls that hold its capacity: the
provision request (idempotent by ``{job}-a{attempt}``) and its release."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from intercloud.control.jobs.context import JobContext
from intercloud.model import PricingKind
from intercloud.providers.base import Allocation, Provider, ProviderError, ProvisionRequest
from intercloud.store import WorkloadRecord


def request_id(w: WorkloadRecord) -> str:
    """The provision request id of the job's current attempt (also its allocation id)."""
    return f"{w.id}-a{w.attempt}"


def where(p: Mapping[str, Any]) -> str:
    """``provider/region/zone instance_type`` of a stored placement, for reasons."""
    loc = "/".join(str(p[k]) for k in ("provider", "region", "zone") if p.get(k))
    return f"{loc} {p.get('instance_type', '')}".strip()


def request(ctx: JobContext, w: WorkloadRecord) -> tuple[Provider, ProvisionRequest]:
    """The provider and provision request of the job's stored placement; ProviderError
    when the provider is not enabled or no longer offers the placement's offering."""
    p = w.placement or {}
    provider = ctx.providers.get(str(p.get("provider")))
    if provider is None:
        raise ProviderError(f"provider {p.get('provider')!r} is not enabled")
    key = (p["provider"], p["region"], p["zone"], p["instance_type"])
    offering = next(
        (o for o in provider.offerings() if (o.provider, o.region, o.zone, o.instance_type) == key),
        None,
    )
    if offering is None:
        raise ProviderError(f"{where(p)} is no longer offered")
    return provider, ProvisionRequest(
        request_id=request_id(w),
        job_id=str(w.id),
        offering=offering,
        nodes=int(p["ranks"]),
        pricing=PricingKind(p.get("pricing", PricingKind.ON_DEMAND.value)),
        accelerators_per_node=int(p.get("accelerator_count", 0)),
        cpus_per_node=float(p.get("cpus_per_node", 1.0)),
        memory_gib_per_node=float(p.get("memory_gib_per_node", 0.0)),
        instance_ids=tuple(int(i) for i in p.get("instances") or ()),
    )


def release(ctx: JobContext, w: WorkloadRecord) -> None:
    """Release the current attempt's allocation (idempotent; nothing before attempt 1)."""
    p = w.placement
    if not p or w.attempt < 1:
        return
    provider = ctx.providers.get(str(p.get("provider")))
    if provider is not None:
        provider.release(request_id(w))


def allocation_dict(a: Allocation) -> dict[str, Any]:
    """The allocation as the store keeps it with the attempt."""
    return {
        "allocation_id": a.allocation_id,
        "provider": a.provider,
        "region": a.region,
        "zone": a.zone,
        "instance_type": a.instance_type,
        "nodes": [
            {"rank": n.rank, "host": n.host, "gpus": list(n.accelerator_ids)} for n in a.nodes
        ],
    }
