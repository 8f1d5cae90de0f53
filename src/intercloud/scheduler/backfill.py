"""EASY backfill: the first gang of the queue that cannot start gets a reservation, and
later gangs may start now only if they do not delay it.

The reservation is concrete: a pool, a start time (the *shadow time*: the earliest
moment, by the expected ends of the running jobs, when the gang fits there) and the
nodes it will take then. A later gang may use those nodes only if it is expected to end
by the shadow time (``duration_s`` known); otherwise it must fit on other nodes. Since
the reserved nodes are then free at the shadow time whatever was backfilled, the head
starts no later than promised (as long as running jobs end by their estimates).

Choosing the reserved nodes: nodes that are busy now and become free by the shadow time
first (holding them blocks nothing now), then idle nodes (best fit, as ``pick``).

Cost: one pass over the running jobs of each candidate pool, sorted by expected end
(``reservation_pools`` cheapest candidate pools at most), once per scheduling cycle.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from intercloud.scheduler.fleet.state import FleetState
from intercloud.scheduler.placement.filter import needs_domain
from intercloud.scheduler.placement.pick import pick_nodes, slots_needed
from intercloud.scheduler.requests import GangRequest


@dataclass(frozen=True, slots=True)
class Reservation:
    """Gang ``job_id`` will start on ``nodes`` of ``pool`` at ``start_s``."""

    job_id: int
    pool: int
    start_s: float
    nodes: frozenset[int]

    def allows(self, r: GangRequest, now_s: float) -> bool:
        """May ``r`` use the reserved nodes now (it ends by the shadow time)?"""
        return r.duration_s is not None and now_s + r.duration_s <= self.start_s


def _by_end(state: FleetState, p: int) -> list[tuple[float, int]]:
    """``(end_s, job)`` of the jobs running on pool ``p``, ascending (read-only), kept
    on the state while the pool's version holds (a job's expected end is fixed when it
    starts; every start or stop in the pool moves the version)."""
    memo = state._by_end
    got = memo.get(p)
    version = state.pool_version[p]
    if got is not None and got[0] == version:
        return got[1]
    allocs = state.allocations
    jobs = sorted([(allocs[j].end_s, j) for j in state._pool_jobs[p]])
    memo[p] = (version, jobs)
    return jobs


def shadow(state: FleetState, p: int, r: GangRequest, now_s: float) -> Reservation | None:
    """When and where ``r`` fits pool ``p`` as the running jobs end by their estimates,
    or None when it does not fit even once every job with a known end has ended.

    Everything the walk reads is pool ``p``'s (its nodes, domains and running jobs,
    whose every change moves ``pool_version[p]``) and the gang's shape; the clock only
    bounds the start: the answer is kept on the state per (pool, shape) while the
    pool's version holds (``_shadow_walk``)."""
    key = (p, r.nodes, r.gpus_per_node, r.vcpus_per_node, needs_domain(r))
    version = state.pool_version[p]
    got = state._shadows.get(key)
    if got is None or got[0] != version:
        if len(state._shadows) >= 4096:
            state._shadows.clear()
        got = state._shadows[key] = (version, *_shadow_walk(state, p, r))
    _, end, nodes = got
    if nodes is None:
        return None
    return Reservation(r.job_id, p, max(end, now_s), nodes)


def _shadow_walk(state: FleetState, p: int, r: GangRequest) -> tuple[float, frozenset[int] | None]:
    """``shadow``'s walk: the expected end at which ``r`` fits and the nodes it would
    take then (None: it never fits)."""
    g = slots_needed(state, p, r)
    big = state.pool_slots[p]
    n = r.nodes
    domain = needs_domain(r)
    allocs = state.allocations
    jobs = _by_end(state, p)
    sim: dict[int, int] = {}
    count = state.nodes_with_at_least(p, g)
    freed: list[int] = []
    freed_set: set[int] = set()
    dom_full: dict[int, int] = {}
    dom_freed: dict[int, list[int]] = {}
    for i, (end, j) in enumerate(jobs):
        if math.isinf(end):
            return math.inf, None
        a = allocs[j]
        for x in a.nodes:
            old = sim.get(x, state.level(x))
            new = old + a.slots
            sim[x] = new
            if domain:
                if new == big:
                    d = int(state.domain[x])
                    dom_full[d] = dom_full.get(d, state.domain_free_count(d)) + 1
                    dom_freed.setdefault(d, []).append(x)
            elif new >= g and x not in freed_set:
                freed.append(x)
                freed_set.add(x)
                if old < g:
                    count += 1
        if i + 1 < len(jobs) and jobs[i + 1][0] == end:
            continue
        if domain:
            best = min(
                ((c, d) for d, c in dom_full.items() if c >= n),
                default=None,
            )
            if best is not None:
                d = best[1]
                busy = dom_freed[d]
                idle = [x for x in reversed(state.domain_free(d)) if x not in sim]
                nodes = (busy + idle)[:n]
                return end, frozenset(nodes)
        elif count >= n:
            nodes = freed[:n]
            if len(nodes) < n:
                rest = pick_nodes(state, p, replace(r, nodes=n - len(nodes)), frozenset(sim))
                if rest is None:  # vCPUs on shared nodes: give up on this pool
                    return math.inf, None
                nodes += rest
            return end, frozenset(nodes)
    return math.inf, None


def reserve(
    state: FleetState, r: GangRequest, pools: Sequence[int], now_s: float, limit: int = 8
) -> Reservation | None:
    """The earliest reservation for ``r`` over the first ``limit`` of ``pools`` (cost
    order; ties go to the cheaper pool)."""
    best: Reservation | None = None
    for p in pools[:limit]:
        res = shadow(state, p, r, now_s)
        if res is not None and (best is None or res.start_s < best.start_s):
            best = res
    return best
