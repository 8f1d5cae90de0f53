"""Hints added to "nothing feasible" messages when a likely misreading explains them."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import TYPE_CHECKING

from intercloud.model import Workload

if TYPE_CHECKING:
    from intercloud.scheduler.planner import Planner


def exactness_hint(
    workload: Workload, planner: Planner, providers: Collection[str] | None = None
) -> str:
    """``"; cpus: 1 means exactly ..."`` when ``workload`` asks for an exact vCPU count,
    nothing matches, and ``N+`` (at least N) would have matched; else ``""``."""
    res = workload.resources
    if not res.cpus_exact or res.cpus is None:
        return ""
    loose = replace(workload, resources=replace(res, cpus_exact=False))
    if planner.plan(loose, providers, top=0).choice is None:
        return ""
    n = f"{res.cpus:g}"
    return (
        f"; note: cpus: {n} means exactly {n} vCPU(s) per node (SkyPilot semantics) and no "
        f"offering has exactly {n}; write cpus: '{n}+' for at least {n}"
    )
