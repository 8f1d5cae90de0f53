"""Why a provider (or later, a pool) cannot take a workload: the filter funnel and its words.

The planner filters candidates through the stages of ``Stage`` in this fixed order, and
reports, for every provider left without a feasible candidate, the stage that removed
its last one. The fleet scheduler reuses the same stages and wording so that a user sees
one vocabulary whether a job is planned or queued. Reasons are written in the words of
the spec a user wrote (``resources.deny_providers``, ``H100:8``), never in column names.

The order is "who, what, where, how paid": provider-level filters first, then the shape
of one node (accelerators, vCPUs, memory, instance type, NVLink domain), then location,
then pricing (spot capacity, the hourly cap).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum


class Stage(IntEnum):
    """Funnel stages in evaluation order; ``FEASIBLE`` means a candidate passed them all."""

    NOT_ENABLED = 0
    DENIED_PROVIDER = 1
    NOT_ALLOWED_PROVIDER = 2
    ACCELERATOR = 3
    CPUS = 4
    MEMORY = 5
    INSTANCE_TYPE = 6
    NVLINK_DOMAIN = 7
    REGION = 8
    DENIED_REGION = 9
    ZONE = 10
    SPOT = 11
    MAX_HOURLY = 12
    FEASIBLE = 13


NOT_ENABLED = "not enabled"
DENIED_PROVIDER = "denied by resources.deny_providers"
NOT_ALLOWED_PROVIDER = "not in resources.providers"
NO_REGION = "no offering in allowed regions"
DENIED_REGION = "offered only in resources.deny_regions"
NO_ZONE = "no offering in allowed zones"

_MAX_LISTED = 8


def _num(x: float) -> str:
    """``32.0`` -> ``32``, ``0.5`` -> ``0.5``."""
    return f"{x:g}"


def no_accelerator(requested: Sequence[str], has: Sequence[str]) -> str:
    """``offers no H100:8 (has: A100:8, H100:1)``; ``requested`` are labels like ``H100:8``.

    ``has`` lists the provider's accelerator configurations (at most eight are shown);
    a CPU-only request is labelled ``CPU``.
    """
    want = " or ".join(requested) if requested else "CPU"
    if want == "CPU":
        return "offers no CPU-only instances"
    if not has:
        return f"offers no {want} (has: CPU only)"
    shown = ", ".join(has[:_MAX_LISTED]) + (", …" if len(has) > _MAX_LISTED else "")
    return f"offers no {want} (has: {shown})"


def no_instance_type(instance_type: str) -> str:
    """``offers no instance type p5.48xlarge`` (none that also meets the accelerator request)."""
    return f"offers no instance type {instance_type}"


def too_few_cpus(cpus: float, exact: bool) -> str:
    """``fewer than 32 vCPUs per node`` (or ``no node with exactly 32 vCPUs``)."""
    if exact:
        return f"no node with exactly {_num(cpus)} vCPUs"
    return f"fewer than {_num(cpus)} vCPUs per node"


def too_little_memory(memory_gib: float) -> str:
    """``less than 256 GiB memory per node``."""
    return f"less than {_num(memory_gib)} GiB memory per node"


def no_nvlink_domain(gpus: int, requested: str, largest: int) -> str:
    """``no NVLink domain of 72 GPUs for GB200:4 (largest: 8)``."""
    return f"no NVLink domain of {gpus} GPUs for {requested} (largest: {largest})"


def no_spot(requested: str) -> str:
    """``no spot capacity for H100:8``."""
    return f"no spot capacity for {requested}"


def over_budget(max_hourly_usd: float, cheapest_hourly_usd: float) -> str:
    """``over max_hourly_usd 100.00 (cheapest: 110.20/h)``."""
    return f"over max_hourly_usd {max_hourly_usd:.2f} (cheapest: {cheapest_hourly_usd:.2f}/h)"


NO_DURATION = "no expected duration given: totals are for one hour"


def spot_share_ignored(spot_share: float) -> str:
    return f"spot_share {_num(spot_share)} ignored: resources.spot is never"


def replicas_on_spot(spot: int, total: int) -> str:
    return f"{spot} of {total} replicas on spot"


def scaled_by_throughput(reference: str) -> str:
    return f"durations on other accelerators scaled by relative throughput (reference: {reference})"


def ordered_fallback(wanted: Sequence[str], chosen: str) -> str:
    return (
        f"{' and '.join(wanted)} could not be placed; using {chosen} (accelerator_choice: ordered)"
    )


def unknown_names(what: str, names: Sequence[str]) -> str:
    """``unknown provider in the request: foo`` (not in the catalog)."""
    return f"not in the catalog ({what}): {', '.join(names)}"
