"""The fleet as numpy columns, one row per node, with aggregates kept up to date on
every change so that a decision never scans the whole fleet.

Layout. Rows are preallocated per pool up to its quota (``PoolSpec.max_nodes``): pool
``p`` owns rows ``[pool_start[p], pool_start[p + 1])``; NVLink domains are consecutive
groups of ``nodes_per_domain`` rows inside a pool (global domain ids, pool ``p`` owns
domains ``[domain_start[p], domain_start[p + 1])``). Arrays are never reshaped: a node
that does not exist (an elastic pool below its quota, a released or reclaimed node) is a
row with ``present`` false.

A node is *usable* when it is present, healthy and ready (its provisioning delay has
passed). Only usable nodes enter the aggregates and can be picked.

Slots. The unit of allocation on a node is a GPU; a CPU-only pool has one slot per node
(its nodes are allocated whole). A gang member takes ``slots`` slots of one node and
``vcpus`` vCPUs. Several gangs may share a node when their members take fewer GPUs than
the node has (``gpus_per_node`` of the request below the node's): a node's ``job`` is the
one job on it, ``FREE`` (-1) when none and ``SHARED`` (-2) when several (``jobs_on``
lists them). A gang never puts two of its members on one node.

Aggregates (updated in O(1) per node changed):

- ``pool_nodes_by_free[p, k]``: usable nodes of pool ``p`` with ``k`` free slots, and a
  bucket (swap-remove list with position index) per ``(p, k)`` holding those nodes, so
  that picking best-fit nodes costs O(nodes picked), not O(pool);
- ``domain_free_nodes[d]``: usable fully free nodes of domain ``d``, and per pool
  ``pool_domains_by_free[p, c]``: domains with ``c`` fully free nodes (with a bucket of
  domains per ``(p, c)`` and, per domain, a bucket of its fully free nodes) — for pools
  whose domains span several nodes;
- allocated GPUs per pool, provider and accelerator (``pool_alloc_gpus``,
  ``allocated_gpus(provider=..., accelerator=...)``) for quotas and diversification caps.

``check_invariants()`` recomputes every aggregate from the columns (tests use it).

The state is the only mutable thing the scheduler touches; it is deterministic (no
clocks, no randomness, no iteration over unordered containers).
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from itertools import groupby, repeat
from types import ModuleType

import numpy as np
import numpy.typing as npt

from intercloud.model import PricingKind
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.requests import GangRequest

try:  # the compiled whole-gang bookkeeping (setup.py builds it where it can)
    import intercloud.scheduler.fleet._fleetc as _native_mod

    _NATIVE: ModuleType | None = _native_mod
except ImportError:  # no compiler at install time: the pure-Python path below
    _NATIVE = None

FREE = -1
SHARED = -2

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


def _neg(x: int) -> int:
    return -x


@dataclass(slots=True)
class Allocation:
    """A running gang: ``request`` placed on ``nodes`` of ``pool``, ``slots`` slots and
    ``vcpus`` vCPUs on each. ``end_s`` is the expected end (``inf``: unknown);
    ``last_checkpoint_s`` the latest moment its state was saved (at least ``start_s``:
    a job resumes from its checkpoint when it starts). A job that saves on a schedule
    (``FleetState.checkpoint_every``) saves at ``ckpt_first_s`` and every
    ``ckpt_every_s`` after, while before ``ckpt_until_s``: ``saved_s`` reads the latest,
    so a simulator need not report each one."""

    job_id: int
    request: GangRequest
    pool: int
    nodes: tuple[int, ...]
    slots: int
    vcpus: float
    start_s: float
    end_s: float
    last_checkpoint_s: float
    ckpt_every_s: float = 0.0
    ckpt_first_s: float = math.inf
    ckpt_until_s: float = math.inf

    @property
    def gpus(self) -> int:
        return self.request.gpus_per_node * len(self.nodes)

    def saved_s(self, now_s: float) -> float:
        """When the job last saved its state, at or before ``now_s``."""
        last = self.last_checkpoint_s
        e = self.ckpt_every_s
        first = self.ckpt_first_s
        if e <= 0 or now_s < first:
            return last
        until = self.ckpt_until_s
        t = first + math.floor((min(now_s, until) - first) / e) * e
        if t >= until:  # the schedule's last save comes strictly before ``until``
            t -= e
        return last if t < first or t <= last else t

    def work_lost_s(self, now_s: float) -> float:
        """GPU-seconds of work lost if the job stopped at ``now_s``."""
        return max(0.0, now_s - self.saved_s(now_s)) * max(self.gpus, 1)


class FleetState:
    """Nodes of ``pools`` as columns. ``initial_nodes[p]`` nodes of pool ``p`` exist at
    the start (default: every pool at its quota; reserved pools are always full), usable
    at once."""

    #: groups of idle nodes at least this large change usability at once
    #: (``_flip_usable``); smaller ones node by node (the same result either way)
    _bulk_min: int = 2
    #: the compiled whole-gang bookkeeping, None for the pure-Python path (same result)
    _native: ModuleType | None = _NATIVE

    def __init__(
        self,
        pools: Sequence[PoolSpec],
        initial_nodes: Sequence[int] | Mapping[int, int] | None = None,
        now_s: float = 0.0,
    ) -> None:
        self.pools: tuple[PoolSpec, ...] = tuple(pools)
        self.now_s = now_s
        n_pools = len(self.pools)
        sizes = np.array([p.max_nodes for p in self.pools], dtype=np.int64)
        self.pool_start: I64 = np.zeros(n_pools + 1, dtype=np.int64)
        np.cumsum(sizes, out=self.pool_start[1:])
        npd = np.array([max(1, p.nodes_per_domain) for p in self.pools], dtype=np.int64)
        doms = -(-sizes // npd)
        self.domain_start: I64 = np.zeros(n_pools + 1, dtype=np.int64)
        np.cumsum(doms, out=self.domain_start[1:])
        n = int(self.pool_start[-1])
        n_dom = int(self.domain_start[-1])
        self.n_nodes = n
        self.n_domains = n_dom

        #: slots per node (GPUs; 1 for CPU-only pools) and nodes per domain, per pool.
        self.pool_slots: list[int] = [p.gpus_per_node if p.gpus_per_node > 0 else 1 for p in pools]
        self.pool_npd: list[int] = [int(x) for x in npd]
        self._pstart: list[int] = [int(x) for x in self.pool_start]
        self._dstart: list[int] = [int(x) for x in self.domain_start]

        self.providers: tuple[str, ...] = tuple(sorted({p.provider for p in pools}))
        self.accelerators: tuple[str, ...] = tuple(
            sorted({p.accelerator for p in pools if p.accelerator})
        )
        prov_ix = {v: i for i, v in enumerate(self.providers)}
        acc_ix = {v: i for i, v in enumerate(self.accelerators)}
        self._pool_prov: list[int] = [prov_ix[p.provider] for p in pools]
        self._gpu_pool: list[bool] = [p.gpus_per_node > 0 for p in pools]
        self._pool_acc: list[int] = [acc_ix[p.accelerator] if p.accelerator else -1 for p in pools]

        # --- columns -----------------------------------------------------------------
        self.pool: I32 = np.repeat(np.arange(n_pools, dtype=np.int32), sizes)
        local = np.arange(n, dtype=np.int64) - np.repeat(self.pool_start[:-1], sizes)
        self.domain: I32 = (
            np.repeat(self.domain_start[:-1], sizes) + local // np.repeat(npd, sizes)
        ).astype(np.int32)
        node_slots = np.repeat(np.array(self.pool_slots, dtype=np.int64), sizes)
        self.free_gpus: npt.NDArray[np.int16] = np.zeros(n, dtype=np.int16)
        self.free_vcpu: npt.NDArray[np.float32] = np.zeros(n, dtype=np.float32)
        self.healthy: npt.NDArray[np.bool_] = np.ones(n, dtype=np.bool_)
        self.present: npt.NDArray[np.bool_] = np.zeros(n, dtype=np.bool_)
        self.ready_at: F64 = np.zeros(n, dtype=np.float64)
        self.job: I64 = np.full(n, FREE, dtype=np.int64)
        self.idle_since: F64 = np.full(n, np.inf, dtype=np.float64)
        self._node_vcpu_col: F64 = np.repeat(
            np.array([p.vcpus_per_node for p in pools], dtype=np.float64), sizes
        )
        self._node_vcpu: list[float] = self._node_vcpu_col.tolist()
        self._node_pool: list[int] = self.pool.tolist()
        self._node_dom: list[int] = self.domain.tolist()

        # --- hot-path mirrors (Python lists are faster than numpy for scalars) ---------
        self._lvl: list[int] = node_slots.tolist()  # free slots (meaningful when usable)
        self._vcpu: list[float] = list(self._node_vcpu)  # free vCPUs
        self._usable: list[bool] = [False] * n
        self._pos: list[int] = [-1] * n  # position in its (pool, level) bucket
        self._dpos: list[int] = [-1] * n  # position in its domain's free-node bucket
        self._dbpos: list[int] = [-1] * n_dom  # position of a domain in its pool bucket
        self._dcount: list[int] = [0] * n_dom

        # --- aggregates ----------------------------------------------------------------
        gmax = max(self.pool_slots, default=1)
        dmax = max(self.pool_npd, default=1)
        self._gmax = gmax
        self._dmax = dmax
        # Speed (fits without summing histograms per pool and request): ``_atl[k][p]``
        # usable nodes of pool ``p`` with at least ``k`` free slots; ``_datl[c][p]``
        # domains of a multi-node-domain pool ``p`` with at least ``c`` fully free nodes.
        self._atl: list[list[int]] = [[0] * n_pools for _ in range(gmax + 1)]
        self._datl: list[list[int]] = [[0] * n_pools for _ in range(dmax + 1)]
        #: grows with every change of pool ``p``'s free slots, usable, present or absent
        #: nodes or jobs:
        #: anything computed from the pool alone holds while it is unchanged.
        self.pool_version: list[int] = [0] * n_pools
        #: grows with every change of ``pool_version`` of any pool of accelerator ``a``
        #: (row as in ``rise_epoch``): one O(1) counter for "none of its pools changed".
        self.acc_version: list[int] = [0] * (len(self.accelerators) + 1)
        self.pool_alloc_gpus: I64 = np.zeros(n_pools, dtype=np.int64)
        self.provider_alloc_gpus: I64 = np.zeros(len(self.providers), dtype=np.int64)
        #: GPUs per provider on pools other than reserved (what diversification caps count)
        self.provider_capped_gpus: I64 = np.zeros(len(self.providers), dtype=np.int64)
        self._capped: list[bool] = [p.pricing != PricingKind.RESERVED for p in pools]
        self.accelerator_alloc_gpus: I64 = np.zeros(len(self.accelerators), dtype=np.int64)
        # plain-int mirrors of the totals the core reads per decision (numpy scalars are slow)
        self._alloc_total = 0
        self._capped_prov: list[int] = [0] * len(self.providers)
        # per pool: (pool_version, its jobs' (end_s, job) ascending), for backfill's shadow
        self._by_end: dict[int, tuple[int, list[tuple[float, int]]]] = {}
        # backfill's shadow per (pool, gang shape): (pool version, end, nodes)
        self._shadows: dict[tuple[object, ...], tuple[int, float, frozenset[int] | None]] = {}
        self.pool_present_nodes: I64 = np.zeros(n_pools, dtype=np.int64)
        self._hist: list[list[int]] = [[0] * (g + 1) for g in self.pool_slots]
        self._buck: list[list[list[int]]] = [[[] for _ in range(g + 1)] for g in self.pool_slots]
        self._dbuck: list[list[list[int]]] = [
            [[] for _ in range(npd_p + 1)] if npd_p > 1 else [] for npd_p in self.pool_npd
        ]
        self._dfree: list[list[int]] = [[] for _ in range(n_dom)]
        for p, npd_p in enumerate(self.pool_npd):
            if npd_p > 1:
                self._datl[0][p] = self._dstart[p + 1] - self._dstart[p]
                b0 = self._dbuck[p][0]
                for d in range(self._dstart[p], self._dstart[p + 1]):
                    self._dbpos[d] = len(b0)
                    b0.append(d)

        # --- change counters (memoisation across cycles) ----------------------------------
        #: ``rise_epoch[a][k]`` grows whenever a usable node of accelerator ``a`` (index in
        #: ``accelerators``; the last row: CPU-only pools) reaches ``k`` or more free slots
        #: from below: a gang needing ``k`` slots a node that did not fit cannot fit
        #: before it changes.
        self.rise_epoch: list[list[int]] = [
            [0] * (gmax + 1) for _ in range(len(self.accelerators) + 1)
        ]
        #: ``place_epoch[a]`` grows with every placement on accelerator ``a`` (new victims).
        self.place_epoch: list[int] = [0] * (len(self.accelerators) + 1)
        #: running preemptible jobs per pool by priority, and per accelerator.
        self.pool_prio: list[dict[int, int]] = [{} for _ in range(n_pools)]
        # and the jobs themselves (preemption's candidates without a pass over the pool)
        self._prio_jobs: list[dict[int, dict[int, None]]] = [{} for _ in range(n_pools)]
        self.acc_prio: list[dict[int, int]] = [{} for _ in range(len(self.accelerators) + 1)]
        #: GPUs of running preemptible jobs per (tenant, accelerator row) by priority: the
        #: most a tenant's own work can shrink when a gang of higher priority preempts.
        self.tenant_prio_gpus: dict[tuple[str, int], dict[int, int]] = {}
        #: GPUs of running preemptible jobs per accelerator row by priority (all tenants).
        self.acc_prio_gpus: list[dict[int, int]] = [{} for _ in range(len(self.accelerators) + 1)]
        self.elastic: list[bool] = [p.elastic for p in pools]

        # --- jobs ----------------------------------------------------------------------
        self.allocations: dict[int, Allocation] = {}
        self._pool_jobs: list[dict[int, None]] = [{} for _ in range(n_pools)]
        self._shared: dict[int, dict[int, int]] = {}  # node -> {job: slots} when shared
        # absent rows per pool, popped lowest first
        self._absent: list[list[int]] = [
            list(range(self._pstart[p + 1] - 1, self._pstart[p] - 1, -1)) for p in range(n_pools)
        ]
        self._pending_ready: list[tuple[float, int]] = []  # heap of (ready_at, node)
        #: jobs evicted (preempted or hit by a provider event) not yet requeued by the
        #: caller: ``requeued(state.evicted.pop(job_id))`` gives the request to queue.
        self.evicted: dict[int, Allocation] = {}
        #: elastic nodes being provisioned for a held job: job -> (pool, rows, ready_at)
        self.provisioning: dict[int, tuple[int, tuple[int, ...], float]] = {}

        #: absent rows of elastic pools per accelerator row (as ``rise_epoch``): whether
        #: provisioning could grow anything for a gang of these accelerators.
        self.elastic_absent: list[int] = [0] * (len(self.accelerators) + 1)
        for p, spec in enumerate(self.pools):
            if initial_nodes is None or spec.pricing not in (
                PricingKind.ON_DEMAND,
                PricingKind.SPOT,
            ):
                count = spec.max_nodes
            elif isinstance(initial_nodes, Mapping):
                count = int(initial_nodes.get(p, spec.max_nodes))
            else:
                count = int(initial_nodes[p])
            if not 0 <= count <= spec.max_nodes:
                raise ValueError(f"pool {spec.key}: {count} initial nodes, quota {spec.max_nodes}")
            ab = self._absent[p]
            self._add_nodes([ab.pop() for _ in range(count)], p, now_s, now_s)
            if spec.elastic:
                self.elastic_absent[self._pool_acc[p]] += len(self._absent[p])

    # ------------------------------------------------------------------ aggregates ---
    @property
    def pool_nodes_by_free(self) -> I64:
        """``[p, k]``: usable nodes of pool ``p`` with ``k`` free slots (a fresh array
        built from the incremental counters in O(pools x levels))."""
        out = np.zeros((self.n_pools, self._gmax + 1), dtype=np.int64)
        for p, h in enumerate(self._hist):
            out[p, : len(h)] = h
        return out

    @property
    def domain_free_nodes(self) -> I32:
        """``[d]``: usable fully free nodes of domain ``d`` (a fresh array)."""
        return np.array(self._dcount, dtype=np.int32)

    @property
    def pool_domains_by_free(self) -> I64:
        """``[p, c]``: domains of pool ``p`` with ``c`` fully free usable nodes."""
        out = np.zeros((self.n_pools, self._dmax + 1), dtype=np.int64)
        for p in range(self.n_pools):
            out[p, : self.pool_npd[p] + 1] = self.domain_histogram(p)
        return out

    def domain_histogram(self, p: int) -> list[int]:
        """Domains of pool ``p`` by count of fully free usable nodes, O(nodes per domain)."""
        if self.pool_npd[p] > 1:
            return [len(b) for b in self._dbuck[p]]
        full = self._hist[p][self.pool_slots[p]]
        return [self._dstart[p + 1] - self._dstart[p] - full, full]

    # ------------------------------------------------------------------ accessors ----
    @property
    def n_pools(self) -> int:
        return len(self.pools)

    def pool_rows(self, p: int) -> range:
        return range(self._pstart[p], self._pstart[p + 1])

    def pool_domains(self, p: int) -> range:
        return range(self._dstart[p], self._dstart[p + 1])

    def pool_jobs(self, p: int) -> list[int]:
        """Running jobs in pool ``p``, in placement order."""
        return list(self._pool_jobs[p])

    def pool_prio_jobs(self, p: int) -> dict[int, dict[int, None]]:
        """Running preemptible jobs of pool ``p`` by priority (live dicts: do not mutate)."""
        return self._prio_jobs[p]

    def level(self, node: int) -> int:
        """Free slots of ``node`` (GPUs; for CPU-only pools 1 when idle)."""
        return self._lvl[node]

    def usable(self, node: int) -> bool:
        return self._usable[node]

    def free_vcpus(self, node: int) -> float:
        return self._vcpu[node]

    def bucket(self, p: int, k: int) -> list[int]:
        """Usable nodes of pool ``p`` with ``k`` free slots (the live list: do not mutate)."""
        return self._buck[p][k]

    def domains_with_free(self, p: int, c: int) -> list[int]:
        """Domains of pool ``p`` with exactly ``c`` fully free usable nodes (live list;
        only for pools whose domains have several nodes)."""
        return self._dbuck[p][c]

    def domain_free(self, d: int) -> list[int]:
        """Fully free usable nodes of domain ``d`` (live list; multi-node domains only)."""
        return self._dfree[d]

    def take_domain_idle(
        self, p: int, n: int, out: list[int], exclude: AbstractSet[int] | None = None
    ) -> list[int] | None:
        """Whole idle nodes of pool ``p`` (multi-node domains) for ``pick_nodes``: domains
        with the fewest idle nodes first (each bucket from its end), each domain's idle
        nodes newest first, those in ``exclude`` skipped, appended to ``out`` until it
        holds ``n``; ``out``, or None when the pool has too few."""
        if self._native is not None:
            got: list[int] | None = self._native.take_domain_idle(
                self._dbuck[p], self._dfree, n, out, exclude if exclude else None
            )
            return got
        dbuck = self._dbuck[p]
        dfree = self._dfree
        if exclude:
            if len(out) >= n:
                return out
            for c in range(1, self.pool_npd[p] + 1):
                doms = dbuck[c]
                for i in range(len(doms) - 1, -1, -1):
                    free = dfree[doms[i]]
                    for j in range(len(free) - 1, -1, -1):
                        x = free[j]
                        if x in exclude:
                            continue
                        out.append(x)
                        if len(out) == n:
                            return out
            return None
        for c in range(1, self.pool_npd[p] + 1):
            doms = dbuck[c]
            for i in range(len(doms) - 1, -1, -1):
                free = dfree[doms[i]]
                need = n - len(out)
                if len(free) >= need:
                    out.extend(free[len(free) - need :][::-1])
                    return out
                out.extend(free[::-1])
        return None

    def domain_free_count(self, d: int) -> int:
        return self._dcount[d]

    def nodes_with_at_least(self, p: int, k: int) -> int:
        """Usable nodes of pool ``p`` with at least ``k`` free slots."""
        return self._atl[k][p] if k < len(self._hist[p]) else 0

    def pools_with_at_least(self, k: int) -> list[int]:
        """Per pool: usable nodes with at least ``k`` free slots (the live list, do not
        mutate; ``k`` at most the largest node's slots)."""
        return self._atl[k]

    def pools_with_free_domain(self, c: int) -> list[int]:
        """Per pool: domains with at least ``c`` fully free usable nodes (the live list,
        do not mutate; multi-node domains only, ``c`` at most the largest domain)."""
        return self._datl[c]

    def jobs_on(self, node: int) -> list[int]:
        j = int(self.job[node])
        if j == FREE:
            return []
        if j == SHARED:
            return sorted(self._shared[node])
        return [j]

    def allocated_gpus(self, provider: str | None = None, accelerator: str | None = None) -> int:
        """GPUs the fleet is running, in all, by provider or by accelerator."""
        if provider is not None:
            if provider not in self.providers:
                return 0
            return int(self.provider_alloc_gpus[self.providers.index(provider)])
        if accelerator is not None:
            if accelerator not in self.accelerators:
                return 0
            return int(self.accelerator_alloc_gpus[self.accelerators.index(accelerator)])
        return self._alloc_total

    def accelerator_index(self, accelerator: str | None) -> int:
        """Row of ``accelerator`` in ``rise_epoch``/``place_epoch`` (CPU-only: the last;
        unknown: -1)."""
        if accelerator is None:
            return len(self.accelerators)
        try:
            return self.accelerators.index(accelerator)
        except ValueError:
            return -1

    def capped_gpus_by_provider(self) -> dict[str, float]:
        """GPUs each provider runs on non-reserved pools (diversification caps)."""
        return {v: float(c) for v, c in zip(self.providers, self._capped_prov, strict=True)}

    def pool_nodes_by_free_row(self, p: int) -> list[int]:
        """``pool_nodes_by_free[p]`` as a list (a copy), O(levels)."""
        return list(self._hist[p])

    def absent_rows(self, p: int) -> list[int]:
        """Rows of pool ``p`` with no node, ascending (a copy)."""
        return self._absent[p][::-1]

    def absent_nodes(self, p: int) -> int:
        return len(self._absent[p])

    def pool_free_slots(self, p: int) -> int:
        """Free slots on usable nodes of pool ``p`` (GPUs; CPU pools: nodes), O(levels)."""
        return sum(k * c for k, c in enumerate(self._hist[p]))

    def free_gpus_total(self) -> int:
        """Free GPUs on usable nodes of GPU pools (from the aggregates)."""
        return sum(
            self.pool_free_slots(p) for p, spec in enumerate(self.pools) if spec.gpus_per_node > 0
        )

    # ------------------------------------------------------------- bucket plumbing ---
    def _bucket_add(self, n: int, p: int, k: int) -> None:
        b = self._buck[p][k]
        self._pos[n] = len(b)
        b.append(n)
        self._hist[p][k] += 1

    def _bucket_remove(self, n: int, p: int, k: int) -> None:
        b = self._buck[p][k]
        i = self._pos[n]
        last = b.pop()
        if last != n:
            b[i] = last
            self._pos[last] = i
        self._pos[n] = -1
        self._hist[p][k] -= 1

    def _dom_move(self, p: int, d: int, old: int, new: int) -> None:
        bs = self._dbuck[p]
        b = bs[old]
        i = self._dbpos[d]
        last = b.pop()
        if last != d:
            b[i] = last
            self._dbpos[last] = i
        nb = bs[new]
        self._dbpos[d] = len(nb)
        nb.append(d)
        if new > old:  # moves are by one
            self._datl[new][p] += 1
        else:
            self._datl[old][p] -= 1

    def _full_add(self, n: int, p: int) -> None:
        d = self._node_dom[n]
        c = self._dcount[d]
        self._dcount[d] = c + 1
        if self.pool_npd[p] > 1:
            f = self._dfree[d]
            self._dpos[n] = len(f)
            f.append(n)
            self._dom_move(p, d, c, c + 1)

    def _full_remove(self, n: int, p: int) -> None:
        d = self._node_dom[n]
        c = self._dcount[d]
        self._dcount[d] = c - 1
        if self.pool_npd[p] > 1:
            f = self._dfree[d]
            i = self._dpos[n]
            last = f.pop()
            if last != n:
                f[i] = last
                self._dpos[last] = i
            self._dpos[n] = -1
            self._dom_move(p, d, c, c - 1)

    def _make_usable(self, n: int) -> None:
        p = self._node_pool[n]
        k = self._lvl[n]
        rise = self.rise_epoch[self._pool_acc[p]]
        atl = self._atl
        for i in range(k + 1):
            rise[i] += 1
            atl[i][p] += 1
        self.pool_version[p] += 1
        self.acc_version[self._pool_acc[p]] += 1
        self._usable[n] = True
        self._bucket_add(n, p, k)
        if k == self.pool_slots[p]:
            self._full_add(n, p)

    def _make_unusable(self, n: int) -> None:
        p = self._node_pool[n]
        k = self._lvl[n]
        self._usable[n] = False
        atl = self._atl
        for i in range(k + 1):
            atl[i][p] -= 1
        self.pool_version[p] += 1
        self.acc_version[self._pool_acc[p]] += 1
        self._bucket_remove(n, p, k)
        if k == self.pool_slots[p]:
            self._full_remove(n, p)

    def _set_level(self, n: int, p: int, old: int, new: int) -> None:
        self._lvl[n] = new
        if self._gpu_pool[p]:
            self.free_gpus[n] = new
        if self._usable[n]:
            self._bucket_remove(n, p, old)
            self._bucket_add(n, p, new)
            self.pool_version[p] += 1
            self.acc_version[self._pool_acc[p]] += 1
            atl = self._atl
            if new > old:
                rise = self.rise_epoch[self._pool_acc[p]]
                for i in range(old + 1, new + 1):
                    rise[i] += 1
                    atl[i][p] += 1
            else:
                for i in range(new + 1, old + 1):
                    atl[i][p] -= 1
            g = self.pool_slots[p]
            if old == g:
                self._full_remove(n, p)
            elif new == g:
                self._full_add(n, p)

    def _all_usable(self, nodes: Sequence[int]) -> bool:
        if self._native is not None:
            return bool(self._native.all_idle(nodes, self._usable, self._lvl, -1))
        return all(map(self._usable.__getitem__, nodes))

    def _all_idle(self, nodes: Sequence[int], slots: int) -> bool:
        """Every node usable with all its ``slots`` free."""
        if self._native is not None:
            return bool(self._native.all_idle(nodes, self._usable, self._lvl, slots))
        if not all(map(self._usable.__getitem__, nodes)):
            return False
        return list(map(self._lvl.__getitem__, nodes)).count(slots) == len(nodes)

    def _bulk_level(self, nodes: Sequence[int], idx: I64, p: int, old: int, new: int) -> None:
        """``_set_level(n, p, old, new)`` for every usable node of ``nodes`` (``idx``:
        the same as an array) in order, where one of ``old``/``new`` is the node's full
        slots (a whole-node gang placed or released): the same buckets, counters and
        orders as the per-node calls, with the per-level and per-domain updates done
        once per gang or per run of one domain's nodes (a domain's one-step moves
        through intermediate buckets, each appended and at once popped again, leave
        those buckets as they were)."""
        m = len(nodes)
        if not m:
            return
        g = self.pool_slots[p]
        bo = self._buck[p][old]
        bn = self._buck[p][new]
        if self._native is not None:
            self._native.bulk_level(nodes, self._lvl, self._pos, bo, bn, new)
        else:
            _bulk_move(nodes, self._lvl, self._pos, bo, bn, new)
        hist = self._hist[p]
        hist[old] -= m
        hist[new] += m
        if self._gpu_pool[p]:
            self.free_gpus[idx] = new
        a = self._pool_acc[p]
        self.pool_version[p] += m
        self.acc_version[a] += m
        atl = self._atl
        if new > old:
            rise = self.rise_epoch[a]
            for i in range(old + 1, new + 1):
                rise[i] += m
                atl[i][p] += m
        else:
            for i in range(new + 1, old + 1):
                atl[i][p] -= m
        self._bulk_full(nodes, p, -1 if old == g else 1)

    def _bulk_full(self, nodes: Sequence[int], p: int, step: int) -> None:
        """``_full_remove`` (``step`` -1) or ``_full_add`` (+1) of ``nodes`` of pool ``p``
        in order, each domain's moves done once per run of its nodes."""
        dcount = self._dcount
        ndom = self._node_dom
        nat = self._native
        if nat is not None:
            multi = self.pool_npd[p] > 1
            nat.bulk_full(
                nodes, step, dcount, self.domain, self._dfree, self._dpos,
                self._dbuck[p] if multi else None, self._dbpos, self._datl, p,
            )  # fmt: skip
            return
        if self.pool_npd[p] <= 1:
            for n in nodes:
                dcount[ndom[n]] += step
            return
        dfree = self._dfree
        dpos = self._dpos
        # per run of one domain's nodes, in order: the domain's count moves once
        for d, grp in groupby(nodes, ndom.__getitem__):
            run = list(grp)
            k = len(run)
            c0 = dcount[d]
            dcount[d] = c0 + step * k
            f = dfree[d]
            t = len(f)
            if step > 0:
                _consume(map(dpos.__setitem__, run, range(t, t + k)))
                f.extend(run)
            elif t >= k and f[t - k :] == run[::-1]:
                # the domain's last idle nodes, last first: each removal pops the node
                del f[t - k :]
                _consume(map(dpos.__setitem__, run, repeat(-1, k)))
            else:
                for n in run:
                    i = dpos[n]
                    last = f.pop()
                    if last != n:
                        f[i] = last
                        dpos[last] = i
                    dpos[n] = -1
            self._dom_jump(p, d, c0, c0 + step * k)

    def _flip_usable(self, nodes: Sequence[int], on: bool) -> None:
        """``_make_usable`` (``on``) or ``_make_unusable`` of ``nodes`` in order (the
        caller checked each needs it). Pools' structures are disjoint, so each pool's
        nodes are done together, in their order; idle nodes in groups of at least
        ``_bulk_min`` at once, others one by one."""
        by_pool: dict[int, list[int]] = {}
        npool = self._node_pool
        for n in nodes:
            by_pool.setdefault(npool[n], []).append(n)
        lvl = self._lvl
        for p, ns in by_pool.items():
            g = self.pool_slots[p]
            if len(ns) < self._bulk_min or any(lvl[n] != g for n in ns):
                for n in ns:
                    if on:
                        self._make_usable(n)
                    else:
                        self._make_unusable(n)
                continue
            m = len(ns)
            a = self._pool_acc[p]
            atl = self._atl
            usable = self._usable
            pos = self._pos
            b = self._buck[p][g]
            if on:
                rise = self.rise_epoch[a]
                for i in range(g + 1):
                    rise[i] += m
                    atl[i][p] += m
                k = len(b)
                for n in ns:
                    usable[n] = True
                    pos[n] = k
                    k += 1
                b.extend(ns)
                self._hist[p][g] += m
            else:
                for i in range(g + 1):
                    atl[i][p] -= m
                for n in ns:
                    usable[n] = False
                    i = pos[n]
                    last = b.pop()
                    if last != n:
                        b[i] = last
                        pos[last] = i
                    pos[n] = -1
                self._hist[p][g] -= m
            self.pool_version[p] += m
            self.acc_version[a] += m
            self._bulk_full(ns, p, 1 if on else -1)

    def _dom_jump(self, p: int, d: int, old: int, new: int) -> None:
        """``_dom_move`` one step at a time from ``old`` to ``new`` fully free nodes."""
        if old == new:
            return
        bs = self._dbuck[p]
        b = bs[old]
        i = self._dbpos[d]
        last = b.pop()
        if last != d:
            b[i] = last
            self._dbpos[last] = i
        nb = bs[new]
        self._dbpos[d] = len(nb)
        nb.append(d)
        datl = self._datl
        if new > old:
            for c in range(old + 1, new + 1):
                datl[c][p] += 1
        else:
            for c in range(new + 1, old + 1):
                datl[c][p] -= 1

    # ------------------------------------------------------------------ allocation ---
    def allocate(
        self,
        request: GangRequest,
        pool: int,
        nodes: Sequence[int],
        now_s: float,
        end_s: float | None = None,
    ) -> Allocation:
        """Run ``request`` on ``nodes`` of ``pool`` (one member per node). The caller
        guarantees the nodes are usable and have room (``placement`` picks them);
        violations raise ``ValueError``."""
        job_id = request.job_id
        if job_id in self.allocations:
            raise ValueError(f"job {job_id} is already running")
        g = self.pool_slots[pool]
        slots = request.gpus_per_node if request.gpus_per_node > 0 else g
        vcpus = request.vcpus_per_node
        if len(set(nodes)) != len(nodes):
            raise ValueError(f"job {job_id}: a node twice in one gang")
        lvl = self._lvl
        vc = self._vcpu
        m = len(nodes)
        nat = self._native
        ok = (  # all at once (C loops); else the loop names the first node that fails
            nat.fits(nodes, self._node_pool, pool, self._usable, lvl, vc, slots, vcpus)
            if nat is not None
            else m > 0
            and list(map(self._node_pool.__getitem__, nodes)).count(pool) == m
            and all(map(self._usable.__getitem__, nodes))
            and min(map(lvl.__getitem__, nodes)) >= slots
            and min(map(vc.__getitem__, nodes)) + 1e-6 >= vcpus
        )
        for n in () if ok else nodes:
            if (
                self._node_pool[n] != pool
                or not self._usable[n]
                or lvl[n] < slots
                or vc[n] + 1e-6 < vcpus
            ):
                raise ValueError(f"job {job_id}: node {n} cannot take {slots} slots")
        ends = math.inf if end_s is None else end_s
        if end_s is None and request.duration_s is not None:
            ends = now_s + request.duration_s
        ckpt = request.last_checkpoint_s
        alloc = Allocation(
            job_id=job_id,
            request=request,
            pool=pool,
            nodes=tuple(nodes),
            slots=slots,
            vcpus=vcpus,
            start_s=now_s,
            end_s=ends,
            last_checkpoint_s=now_s if ckpt is None else max(ckpt, now_s),
        )
        self.restore(alloc)
        return alloc

    def restore(self, alloc: Allocation) -> None:
        """Put back an allocation exactly as it was (undo of ``release``; the nodes must
        still have room)."""
        job_id = alloc.job_id
        pool = alloc.pool
        slots = alloc.slots
        vcpus = alloc.vcpus
        vc = self._vcpu
        job = self.job
        if slots == self.pool_slots[pool] and self._all_idle(alloc.nodes, slots):
            # whole nodes, all idle before: every node goes from all free to 0
            nodes = alloc.nodes
            idx = np.fromiter(nodes, dtype=np.int64, count=len(nodes))
            self._bulk_level(nodes, idx, pool, slots, 0)
            job[idx] = job_id
            self.idle_since[idx] = np.inf
            if self._native is not None:
                left = self._native.take_vcpus(vc, nodes, vcpus)
            else:
                left = [v - vcpus for v in map(vc.__getitem__, nodes)]
                _consume(map(vc.__setitem__, nodes, left))
            self.free_vcpu[idx] = left
        else:
            self._restore_nodes(alloc)
        self._restored(alloc)

    def _restore_nodes(self, alloc: Allocation) -> None:
        job_id = alloc.job_id
        pool = alloc.pool
        slots = alloc.slots
        vcpus = alloc.vcpus
        lvl = self._lvl
        vc = self._vcpu
        job = self.job
        for n in alloc.nodes:
            k = lvl[n]
            self._set_level(n, pool, k, k - slots)
            vc[n] -= vcpus
            self.free_vcpu[n] = vc[n]
            j = int(job[n])
            if j == FREE:
                job[n] = job_id
                self.idle_since[n] = np.inf
            elif j == SHARED:
                self._shared[n][job_id] = slots
            else:
                self._shared[n] = {j: self.allocations[j].slots, job_id: slots}
                job[n] = SHARED

    def _restored(self, alloc: Allocation) -> None:
        job_id = alloc.job_id
        pool = alloc.pool
        self.allocations[job_id] = alloc
        self.pool_version[pool] += 1
        self.acc_version[self._pool_acc[pool]] += 1
        self.evicted.pop(job_id, None)
        self._pool_jobs[pool][job_id] = None
        ai = self._pool_acc[pool]
        self.place_epoch[ai] += 1
        if alloc.request.preemptible:
            q = alloc.request.priority
            pp = self.pool_prio[pool]
            pp[q] = pp.get(q, 0) + 1
            self._prio_jobs[pool].setdefault(q, {})[job_id] = None
            ap = self.acc_prio[ai]
            ap[q] = ap.get(q, 0) + 1
            gpus = alloc.request.gpus_per_node * len(alloc.nodes)
            if gpus:
                tp = self.tenant_prio_gpus.setdefault((alloc.request.tenant, ai), {})
                tp[q] = tp.get(q, 0) + gpus
                ag = self.acc_prio_gpus[ai]
                ag[q] = ag.get(q, 0) + gpus
        self._count_gpus(pool, alloc.request.gpus_per_node * len(alloc.nodes))

    def _count_gpus(self, pool: int, gpus: int) -> None:
        if gpus:
            self.pool_alloc_gpus[pool] += gpus
            self._alloc_total += gpus
            self.provider_alloc_gpus[self._pool_prov[pool]] += gpus
            if self._capped[pool]:
                self.provider_capped_gpus[self._pool_prov[pool]] += gpus
                self._capped_prov[self._pool_prov[pool]] += gpus
            a = self._pool_acc[pool]
            if a >= 0:
                self.accelerator_alloc_gpus[a] += gpus

    def release(self, job_id: int, now_s: float, evicted: bool = False) -> Allocation:
        """The job ended (finished, cancelled, preempted or evicted): free its nodes.
        ``evicted``: keep the allocation in ``evicted`` for the caller to requeue."""
        alloc = self.allocations.pop(job_id)
        if alloc.ckpt_every_s > 0:  # fixed now: ``requeued`` reads the field
            alloc.last_checkpoint_s = alloc.saved_s(now_s)
        if evicted:
            self.evicted[job_id] = alloc
        pool = alloc.pool
        self.pool_version[pool] += 1
        self.acc_version[self._pool_acc[pool]] += 1
        del self._pool_jobs[pool][job_id]
        if alloc.request.preemptible:
            q = alloc.request.priority
            for d in (self.pool_prio[pool], self.acc_prio[self._pool_acc[pool]]):
                d[q] -= 1
                if not d[q]:
                    del d[q]
            pj = self._prio_jobs[pool]
            del pj[q][job_id]
            if not pj[q]:
                del pj[q]
            gpus = alloc.request.gpus_per_node * len(alloc.nodes)
            if gpus:
                tp = self.tenant_prio_gpus[(alloc.request.tenant, self._pool_acc[pool])]
                tp[q] -= gpus
                if not tp[q]:
                    del tp[q]
                ag = self.acc_prio_gpus[self._pool_acc[pool]]
                ag[q] -= gpus
                if not ag[q]:
                    del ag[q]
        slots = alloc.slots
        vcpus = alloc.vcpus
        if slots == self.pool_slots[pool] and self._all_usable(alloc.nodes):
            # whole nodes (no other job on them): every node goes from 0 to all free
            nodes = alloc.nodes
            idx = np.fromiter(nodes, dtype=np.int64, count=len(nodes))
            self._bulk_level(nodes, idx, pool, 0, slots)
            self.job[idx] = FREE
            self.idle_since[idx] = now_s
            vc = self._vcpu
            # no float drift on idle nodes
            if self._native is not None:
                self._native.copy_items(vc, self._node_vcpu, nodes)
            else:
                _consume(map(vc.__setitem__, nodes, map(self._node_vcpu.__getitem__, nodes)))
            self.free_vcpu[idx] = self._node_vcpu_col[idx]
            self._count_gpus(pool, -alloc.request.gpus_per_node * len(nodes))
            return alloc
        lvl = self._lvl
        job = self.job
        for n in alloc.nodes:
            k = lvl[n]
            self._set_level(n, pool, k, k + slots)
            self._vcpu[n] += vcpus
            j = int(job[n])
            if j == SHARED:
                sh = self._shared[n]
                del sh[job_id]
                if len(sh) == 1:
                    job[n] = next(iter(sh))
                    del self._shared[n]
            else:
                job[n] = FREE
                self._vcpu[n] = self._node_vcpu[n]  # no float drift on idle nodes
                self.idle_since[n] = now_s
            self.free_vcpu[n] = self._vcpu[n]
        self._count_gpus(pool, -alloc.request.gpus_per_node * len(alloc.nodes))
        return alloc

    def checkpoint(self, job_id: int, at_s: float) -> None:
        """Job ``job_id`` saved its state at ``at_s``."""
        a = self.allocations[job_id]
        a.last_checkpoint_s = max(a.last_checkpoint_s, at_s)

    def checkpoint_every(self, job_id: int, first_s: float, every_s: float, until_s: float) -> None:
        """Job ``job_id`` saves its state at ``first_s`` and every ``every_s`` after,
        while before ``until_s`` (``Allocation.saved_s``): what a checkpoint at each of
        those moments would tell, without a call for each."""
        if not every_s > 0:
            raise ValueError(f"job {job_id}: every_s must be > 0, got {every_s}")
        a = self.allocations[job_id]
        a.ckpt_every_s, a.ckpt_first_s, a.ckpt_until_s = every_s, first_s, until_s

    # ------------------------------------------------------- nodes coming and going ---
    def _add_nodes(self, rows: Sequence[int], p: int, now_s: float, ready_at: float) -> None:
        """Absent ``rows`` of pool ``p`` get a node, usable from ``ready_at``."""
        m = len(rows)
        if not m:
            return
        idx = np.fromiter(rows, dtype=np.int64, count=m)
        self.present[idx] = True
        self.ready_at[idx] = ready_at
        self.free_gpus[idx] = self.pools[p].gpus_per_node
        self.free_vcpu[idx] = self._node_vcpu_col[idx]
        self.job[idx] = FREE
        self.idle_since[idx] = ready_at
        g = self.pool_slots[p]
        lvl = self._lvl
        vc = self._vcpu
        nv = self._node_vcpu
        for n in rows:
            lvl[n] = g
            vc[n] = nv[n]
        self.pool_present_nodes[p] += m
        # absent rows are what provisioning reads: a pool's version covers them too
        self.pool_version[p] += m
        self.acc_version[self._pool_acc[p]] += m
        if ready_at <= now_s:
            ok = self.healthy[idx]
            self._flip_usable(rows if bool(ok.all()) else idx[ok].tolist(), True)
        else:
            heap = self._pending_ready
            for n in rows:
                heapq.heappush(heap, (ready_at, n))

    def provision(self, pool: int, count: int, now_s: float) -> tuple[int, ...]:
        """Ask for ``count`` more nodes of elastic ``pool``; they become usable
        ``provision_delay_s`` later (``advance``). Returns the rows given to them."""
        spec = self.pools[pool]
        if not spec.elastic:
            raise ValueError(f"pool {spec.key} is not elastic")
        if count > len(self._absent[pool]):
            raise ValueError(f"pool {spec.key}: quota {spec.max_nodes} exceeded")
        rows = tuple(self._absent[pool].pop() for _ in range(count))
        self.elastic_absent[self._pool_acc[pool]] -= count
        self._add_nodes(rows, pool, now_s, now_s + spec.provision_delay_s)
        return rows

    def provision_rows(
        self, pool: int, rows: Sequence[int], now_s: float, ready_at: float | None = None
    ) -> None:
        """Like ``provision`` but for chosen absent ``rows`` of ``pool``; ``ready_at``
        (default: ``now_s`` plus the pool's delay) at or before ``now_s`` makes them
        usable at once, as the nodes a state starts with."""
        spec = self.pools[pool]
        absent = self._absent[pool]
        taken = set(rows)
        left = [n for n in absent if n not in taken]
        if len(taken) != len(rows) or len(left) != len(absent) - len(rows):
            raise ValueError(f"pool {spec.key}: rows {list(rows)} are not all absent")
        absent[:] = left
        if spec.elastic:
            self.elastic_absent[self._pool_acc[pool]] -= len(rows)
        at = now_s + spec.provision_delay_s if ready_at is None else ready_at
        self._add_nodes(rows, pool, now_s, at)

    def advance(self, now_s: float) -> list[int]:
        """Move the clock: provisioned nodes whose delay has passed become usable."""
        self.now_s = max(self.now_s, now_s)
        out: list[int] = []
        heap = self._pending_ready
        made: dict[int, None] = {}  # made usable, in order
        usable = self._usable
        while heap and heap[0][0] <= now_s:
            t, n = heapq.heappop(heap)
            if self.present[n] and self.ready_at[n] == t and not usable[n] and n not in made:
                if self.healthy[n]:
                    made[n] = None
                out.append(n)
        if made:
            self._flip_usable(list(made), True)
        return out

    def is_ready(self, node: int) -> bool:
        return bool(self.present[node]) and float(self.ready_at[node]) <= self.now_s

    def remove_nodes(self, nodes: Iterable[int]) -> None:
        """Nodes gone (released, reclaimed, provisioning failed). They must host no job
        (checked for all before any is removed)."""
        ns = list(dict.fromkeys(nodes))
        if not ns:
            return
        idx = np.fromiter(ns, dtype=np.int64, count=len(ns))
        idx = idx[self.present[idx]]
        busy = idx[self.job[idx] != FREE]
        if len(busy):
            n = int(busy[0])
            raise ValueError(f"node {n} still hosts jobs {self.jobs_on(n)}")
        ns = idx.tolist()
        usable = self._usable
        self._flip_usable([n for n in ns if usable[n]], False)
        self.present[idx] = False
        self.idle_since[idx] = np.inf
        gone: dict[int, list[int]] = {}
        npool = self._node_pool
        for n in ns:
            gone.setdefault(npool[n], []).append(n)
        for p, rows in gone.items():
            m = len(rows)
            self.pool_present_nodes[p] -= m
            self.pool_version[p] += m
            self.acc_version[self._pool_acc[p]] += m
            if self.elastic[p]:
                self.elastic_absent[self._pool_acc[p]] += m
            absent = self._absent[p]
            # keep the stack sorted descending so the lowest row is reused first
            if m <= 2:
                for n in rows:
                    absent.insert(bisect.bisect_left(absent, -n, key=_neg), n)
            else:
                absent.extend(rows)
                absent.sort(reverse=True)

    def set_healthy(self, nodes: Iterable[int], healthy: bool) -> None:
        """Mark nodes failed (``False``; they must host no job, checked for all before
        any is marked) or repaired."""
        ns = nodes if isinstance(nodes, (list, tuple, range)) else list(nodes)
        if not healthy:
            for n in ns:
                if self.healthy[n] and self.job[n] != FREE:
                    raise ValueError(f"node {n} still hosts jobs {self.jobs_on(n)}")
        flip: list[int] = []
        usable = self._usable
        for n in ns:
            if bool(self.healthy[n]) == healthy:
                continue
            self.healthy[n] = healthy
            if not self.present[n]:
                continue
            if usable[n] if not healthy else float(self.ready_at[n]) <= self.now_s:
                flip.append(n)
        if flip:
            self._flip_usable(flip, healthy)

    def idle_nodes(self, pool: int, now_s: float, min_idle_s: float) -> list[int]:
        """Fully free usable nodes of ``pool`` idle for at least ``min_idle_s``."""
        g = self.pool_slots[pool]
        out = [n for n in self._buck[pool][g] if now_s - float(self.idle_since[n]) >= min_idle_s]
        out.sort()
        return out

    # ------------------------------------------------------------------ checking -----
    def check_invariants(self) -> None:
        """Recompute every aggregate from the columns and the allocations; raise
        ``AssertionError`` on the first mismatch."""
        n = self.n_nodes
        used = np.zeros(n, dtype=np.int64)
        used_vcpu = np.zeros(n, dtype=np.float64)
        holders: dict[int, dict[int, int]] = {}
        alloc_gpus = np.zeros(self.n_pools, dtype=np.int64)
        for j, a in self.allocations.items():
            assert a.job_id == j
            assert len(set(a.nodes)) == len(a.nodes), f"job {j}: a node twice"
            assert j in self._pool_jobs[a.pool]
            for x in a.nodes:
                assert self._node_pool[x] == a.pool, f"job {j}: node {x} outside pool"
                assert self.present[x], f"job {j} on absent node {x}"
                assert self.healthy[x], f"job {j} on failed node {x}"
                used[x] += a.slots
                used_vcpu[x] += a.vcpus
                holders.setdefault(x, {})[j] = a.slots
            alloc_gpus[a.pool] += a.request.gpus_per_node * len(a.nodes)
        assert sum(len(s) for s in self._pool_jobs) == len(self.allocations)
        for p in range(self.n_pools):
            want_pj: dict[int, set[int]] = {}
            for j in self._pool_jobs[p]:
                rq = self.allocations[j].request
                if rq.preemptible:
                    want_pj.setdefault(rq.priority, set()).add(j)
            got_pj = {q: set(js) for q, js in self._prio_jobs[p].items()}
            assert got_pj == want_pj, f"pool {p}: preemptible jobs by priority drifted"
        want_tp: dict[tuple[str, int], dict[int, int]] = {}
        for a in self.allocations.values():
            rq = a.request
            if rq.preemptible and rq.gpus_per_node * len(a.nodes):
                tpd = want_tp.setdefault((rq.tenant, self._pool_acc[a.pool]), {})
                tpd[rq.priority] = tpd.get(rq.priority, 0) + rq.gpus_per_node * len(a.nodes)
        got_tp = {k: v for k, v in self.tenant_prio_gpus.items() if v}
        assert got_tp == want_tp, "tenants' preemptible GPUs by priority drifted"
        want_ag: list[dict[int, int]] = [{} for _ in self.acc_prio_gpus]
        for (_, ai), tpd in want_tp.items():
            for q, v in tpd.items():
                want_ag[ai][q] = want_ag[ai].get(q, 0) + v
        assert self.acc_prio_gpus == want_ag, "preemptible GPUs by priority drifted"
        slots = np.array(self.pool_slots, dtype=np.int64)[self.pool]
        lvl = np.array(self._lvl, dtype=np.int64)
        present = self.present
        assert np.all(used <= slots), "node over-allocated (slots)"
        vcap = np.array(self._node_vcpu)
        assert np.all(used_vcpu <= vcap + 1e-6), "node over-allocated (vCPUs)"
        assert np.all(lvl[present] == (slots - used)[present]), "free slots drifted"
        assert np.all(np.abs(np.array(self._vcpu) - (vcap - used_vcpu))[present] < 1e-3)
        for x in range(n):
            h = holders.get(x)
            j = int(self.job[x])
            if not h:
                assert j == FREE, f"node {x}: job {j} but nothing allocated"
            elif len(h) == 1:
                assert j == next(iter(h)), f"node {x}: job column {j}, holders {h}"
            else:
                assert j == SHARED and self._shared[x] == h, f"node {x}: shared {h}"
        usable = present & self.healthy & (self.ready_at <= self.now_s)
        mirror = np.array(self._usable, dtype=np.bool_)
        # a node whose ready time passed but advance() has not been called yet is
        # not usable; anything usable must be ready, present and healthy.
        assert np.all(~mirror | usable), "unusable node in the buckets"
        assert np.array_equal(self.pool_alloc_gpus, alloc_gpus), "pool GPU totals drifted"
        prov = np.zeros(len(self.providers), dtype=np.int64)
        acc = np.zeros(len(self.accelerators), dtype=np.int64)
        for p in range(self.n_pools):
            prov[self._pool_prov[p]] += alloc_gpus[p]
            if self._pool_acc[p] >= 0:
                acc[self._pool_acc[p]] += alloc_gpus[p]
        assert np.array_equal(self.provider_alloc_gpus, prov)
        capped = np.zeros(len(self.providers), dtype=np.int64)
        for p in range(self.n_pools):
            if self._capped[p]:
                capped[self._pool_prov[p]] += alloc_gpus[p]
        assert np.array_equal(self.provider_capped_gpus, capped)
        assert self._capped_prov == capped.tolist(), "capped GPU mirror drifted"
        assert self._alloc_total == int(alloc_gpus.sum()), "GPU total mirror drifted"
        assert np.array_equal(self.accelerator_alloc_gpus, acc)
        dfree = np.zeros(self.n_domains, dtype=np.int64)
        for p in range(self.n_pools):
            g = self.pool_slots[p]
            rows = self.pool_rows(p)
            m = mirror[rows.start : rows.stop]
            lv = lvl[rows.start : rows.stop]
            hist = np.bincount(lv[m], minlength=g + 1)
            assert hist.tolist() == self._hist[p], f"pool {p}: histogram drifted"
            for k in range(self._gmax + 1):
                want = int(hist[k:].sum()) if k <= g else 0
                assert self._atl[k][p] == want, f"pool {p}: nodes with >= {k} free drifted"
            for k in range(g + 1):
                b = self._buck[p][k]
                assert len(b) == hist[k]
                assert all(self._pos[x] == i and lvl[x] == k and mirror[x] for i, x in enumerate(b))
            full = rows.start + np.flatnonzero(m & (lv == g))
            np.add.at(dfree, self.domain[full], 1)
            assert int(self.pool_present_nodes[p]) == int(present[rows.start : rows.stop].sum())
            assert sorted(self._absent[p]) == [
                rows.start + i for i in np.flatnonzero(~present[rows.start : rows.stop])
            ]
        assert dfree.tolist() == self._dcount, "domain free counts drifted"
        ea = [0] * len(self.elastic_absent)
        for p in range(self.n_pools):
            if self.elastic[p]:
                ea[self._pool_acc[p]] += len(self._absent[p])
        assert ea == self.elastic_absent, "elastic absent rows drifted"
        gpu_pool = np.array(self._gpu_pool, dtype=np.bool_)[self.pool]
        want_gpus = np.where(gpu_pool & present, lvl, 0)
        assert np.array_equal(self.free_gpus[present], want_gpus[present]), "free_gpus column"
        assert np.allclose(self.free_vcpu[present], np.array(self._vcpu)[present], atol=1e-2)
        for p in range(self.n_pools):
            doms = self.pool_domains(p)
            counts = np.bincount(dfree[doms.start : doms.stop], minlength=self.pool_npd[p] + 1)
            assert counts.tolist() == self.domain_histogram(p), f"pool {p}: domain histogram"
            for c in range(self._dmax + 1):
                want = int(counts[c:].sum()) if self.pool_npd[p] > 1 else 0
                assert self._datl[c][p] == want, f"pool {p}: domains with >= {c} free drifted"
            if self.pool_npd[p] > 1:
                for c, b in enumerate(self._dbuck[p]):
                    assert all(self._dbpos[d] == i and dfree[d] == c for i, d in enumerate(b))
                for d in doms:
                    f = self._dfree[d]
                    assert len(f) == dfree[d]
                    assert all(self._dpos[x] == i for i, x in enumerate(f))


def _bulk_move(
    nodes: Sequence[int], lvl: list[int], pos: list[int], bo: list[int], bn: list[int], new: int
) -> None:
    """The bucket part of ``FleetState._bulk_level`` (``_fleetc.bulk_level`` compiled):
    the removals from ``bo`` in order, then the appends to ``bn`` (another list): what
    the per-node calls leave, with fewer calls per node."""
    m = len(nodes)
    t = len(bo) - m
    if t >= 0 and bo[t:] == list(nodes[::-1]):
        # the nodes are ``bo``'s last ones, last first (what ``pick_nodes`` takes):
        # each removal pops the node itself
        del bo[t:]
        _consume(map(lvl.__setitem__, nodes, repeat(new, m)))
    else:
        for n in nodes:
            lvl[n] = new
            i = pos[n]
            last = bo.pop()
            if last != n:
                bo[i] = last
                pos[last] = i
    k = len(bn)
    _consume(map(pos.__setitem__, nodes, range(k, k + m)))
    bn.extend(nodes)


def _consume(it: Iterator[object]) -> None:
    """Run ``it`` to its end at C speed (the ``map(list.__setitem__, ...)`` idiom)."""
    deque(it, maxlen=0)
