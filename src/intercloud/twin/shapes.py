"""Trace jobs -> the scheduler's gang requests, on the node shapes of a fleet.

A trace says "g GPUs (of type t)"; the scheduler wants ``nodes x gpus_per_node`` of a
set of accelerators. The rule (deterministic for a seed):

- accelerators are grouped into families by GPUs per node (8-GPU HGX servers: H100,
  H200, B200; 4-GPU GB200 NVL72 nodes);
- a job whose ``gpu_type`` the fleet has asks for that accelerator only; any other job
  goes to one family, drawn in proportion to the family's GPUs, and accepts every
  accelerator of it;
- on a family of ``k`` GPUs per node, ``g <= k`` GPUs are one node of ``g`` GPUs, more
  are ``ceil(g / k)`` whole nodes (the GPUs rounded up to whole nodes);
- a job of 0 GPUs is one CPU node;
- on a fleet without GPUs (a CPU cluster, like the local provider's sites, whose nodes
  are CPU slots), a job's size counts CPU nodes: ``g`` is a gang of ``g`` CPU nodes.

Tenants: a trace tenant that the fleet names keeps its name; others are spread over
the fleet's tenants by code (``code % tenants``); a fleet without tenants keeps the
trace's names.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from intercloud.model import SpotPolicy
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.requests import GangRequest, TenantSpec

__all__ = ["JobShaper"]


@dataclass(frozen=True, slots=True)
class _Family:
    gpus_per_node: int
    accelerators: tuple[str, ...]
    gpus: int


class JobShaper:
    """Builds the ``GangRequest`` of trace job rows (module docstring)."""

    def __init__(
        self,
        pools: Sequence[PoolSpec],
        tenants: Sequence[TenantSpec],
        trace_tenants: Sequence[str],
        seed: int = 0,
    ) -> None:
        self._rng = random.Random(seed)
        per_acc: dict[str, tuple[int, int]] = {}  # accelerator -> (GPUs per node, GPUs)
        for p in pools:
            if p.accelerator and p.gpus_per_node > 0:
                k, g = per_acc.get(p.accelerator, (0, 0))
                per_acc[p.accelerator] = (max(k, p.gpus_per_node), g + p.max_gpus)
        fam: dict[int, list[str]] = {}
        for a, (k, _) in sorted(per_acc.items()):
            fam.setdefault(k, []).append(a)
        self._acc = per_acc
        self._families = [
            _Family(k, tuple(accs), sum(per_acc[a][1] for a in accs))
            for k, accs in sorted(fam.items(), reverse=True)
        ]
        total = sum(f.gpus for f in self._families)
        acc = 0.0
        self._cum: list[float] = []
        for f in self._families:
            acc += f.gpus / total if total else 0.0
            self._cum.append(acc)
        names = [t.name for t in tenants]
        known = set(names)
        self.tenant_of: list[str] = [
            t if (t in known or not names) else names[i % len(names)]
            for i, t in enumerate(trace_tenants)
        ]
        self._default_tenant = names[0] if names else ""

    def shape(
        self,
        job_id: int,
        gpus: int,
        gpu_type: str | None,
        tenant: int,
        priority: int,
        spot_allowed: bool,
        submit_s: float,
        duration_s: float,
    ) -> GangRequest:
        """The gang request of one trace row (``tenant``: the trace's tenant code)."""
        accs: tuple[str, ...] = ()
        if not self._families:
            nodes, gpn = max(1, gpus), 0
        elif gpus <= 0:
            nodes, gpn = 1, 0
        else:
            if gpu_type is not None and gpu_type in self._acc:
                k = self._acc[gpu_type][0]
                accs = (gpu_type,)
            else:
                x = self._rng.random()
                f = next(
                    (f for f, c in zip(self._families, self._cum, strict=True) if x < c),
                    self._families[-1],
                )
                k, accs = f.gpus_per_node, f.accelerators
            if gpus <= k:
                nodes, gpn = 1, gpus
            else:
                nodes, gpn = math.ceil(gpus / k), k
        ok = 0 <= tenant < len(self.tenant_of)
        name = self.tenant_of[tenant] if ok else self._default_tenant
        return GangRequest(
            job_id=job_id,
            tenant=name,
            nodes=nodes,
            gpus_per_node=gpn,
            accelerators=accs,
            priority=priority,
            submit_s=submit_s,
            spot=SpotPolicy.ALLOWED if spot_allowed else SpotPolicy.NEVER,
            duration_s=duration_s,
        )
