"""From a job's stored placement to the provider calls that hold its capacity: the
provision request (idempotent by ``{job}-a{attempt}``) and its release."""

from __future__ import annotations

from typing import Any

from intercloud.control.jobs.context import JobContext
from intercloud.model import JobPlacement
from intercloud.providers.base import Allocation, Provider, ProviderError, ProvisionRequest
from intercloud.store import WorkloadRecord


def request_id(w: WorkloadRecord) -> str:
    """The provision request id of the job's current attempt (also its allocation id)."""
    return f"{w.id}-a{w.attempt}"


def job_placement(w: WorkloadRecord) -> JobPlacement:
    """The placement of a job that has one (PLACING and later); ValueError naming the
    field when the stored one is missing or malformed (a bug: the loop wrote it)."""
    return JobPlacement.from_stored(w.placement or {})


def request(ctx: JobContext, w: WorkloadRecord) -> tuple[Provider, ProvisionRequest]:
    """The provider and provision request of the job's stored placement; ProviderError
    when the provider is not enabled or no longer offers the placement's offering."""
    jp = job_placement(w)
    p = jp.placement
    provider = ctx.providers.get(p.provider)
    if provider is None:
        raise ProviderError(f"provider {p.provider!r} is not enabled")
    key = (p.provider, p.region, p.zone, p.instance_type)
    offering = next(
        (o for o in provider.offerings() if (o.provider, o.region, o.zone, o.instance_type) == key),
        None,
    )
    if offering is None:
        raise ProviderError(f"{p.where} is no longer offered")
    return provider, ProvisionRequest(
        request_id=request_id(w),
        job_id=str(w.id),
        offering=offering,
        nodes=jp.ranks,
        pricing=p.pricing,
        accelerators_per_node=p.accelerator_count,
        cpus_per_node=jp.cpus_per_node,
        memory_gib_per_node=jp.memory_gib_per_node,
        instance_ids=jp.instances,
        duration_s=p.duration_hours * 3600 if p.duration_hours > 0 else None,
    )


def release(ctx: JobContext, w: WorkloadRecord) -> None:
    """Release the current attempt's allocation (idempotent; nothing before attempt 1)."""
    if not w.placement or w.attempt < 1:
        return
    provider = ctx.providers.get(job_placement(w).placement.provider)
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
