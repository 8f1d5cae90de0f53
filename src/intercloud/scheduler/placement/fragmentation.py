"""How much free capacity the pending size mix cannot use, from the aggregates only.

For every GPU pool, the smallest member any pending gang could put there (``g_min``
GPUs) decides what is usable: a node with ``k`` free GPUs serves ``k // g_min`` such
members, and the rest of its free GPUs are *stranded*. Free GPUs of pools no pending gang
could use at all are counted apart (*unwanted*: idle, not fragmented). Domains whose
nodes are all idle are counted too: they are what large NVLink gangs need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from intercloud.scheduler.fleet.state import FleetState
from intercloud.scheduler.requests import GangRequest


@dataclass(frozen=True, slots=True)
class Fragmentation:
    free_gpus: int
    stranded_gpus: int
    unwanted_gpus: int
    whole_free_domains: int

    @property
    def ratio(self) -> float:
        """Stranded share of the free GPUs that some pending gang could use."""
        wanted = self.free_gpus - self.unwanted_gpus
        return self.stranded_gpus / wanted if wanted else 0.0


def fragmentation(state: FleetState, pending: Sequence[GangRequest]) -> Fragmentation:
    smallest: dict[str, int] = {}
    for r in pending:
        if r.gpus_per_node <= 0:
            continue
        for a in r.accelerators:
            smallest[a] = min(smallest.get(a, r.gpus_per_node), r.gpus_per_node)
    free = stranded = unwanted = whole = 0
    for p, spec in enumerate(state.pools):
        if spec.gpus_per_node <= 0:
            continue
        hist = state.pool_nodes_by_free_row(p)
        pool_free = sum(k * c for k, c in enumerate(hist))
        free += pool_free
        dh = state.domain_histogram(p)
        whole += dh[-1] if len(dh) == spec.nodes_per_domain + 1 else 0
        gmin = smallest.get(spec.accelerator or "")
        if gmin is None or gmin > spec.gpus_per_node:
            unwanted += pool_free
            continue
        usable = sum((k // gmin) * gmin * c for k, c in enumerate(hist))
        stranded += pool_free - usable
    return Fragmentation(free, stranded, unwanted, whole)
