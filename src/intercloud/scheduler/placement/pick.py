"""Filter/Score at node level: which nodes of a pool a gang takes — all or nothing.

Best fit, so that large gangs find room later:

- a member that takes part of a node goes to the node with the fewest free slots that
  still fits it (partially used nodes before idle ones);
- members that need idle nodes take them from the domains with the fewest idle nodes
  first, so that whole NVLink domains stay free for gangs that need one;
- an ``nvlink_domain`` gang of several nodes takes idle nodes of one domain: the domain
  with the fewest idle nodes that still holds the gang (such gangs always take whole
  nodes; a member is never spread over two domains).

Cost: O(levels + nodes examined); the buckets of the fleet state hand over candidates
directly, so a pick never scans a pool. ``exclude`` (nodes held for the reservation of
the queue's head) is skipped over.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence, Set

from intercloud.scheduler.fleet.state import FleetState
from intercloud.scheduler.placement.filter import needs_domain
from intercloud.scheduler.requests import GangRequest


def slots_needed(state: FleetState, p: int, r: GangRequest) -> int:
    return r.gpus_per_node if r.gpus_per_node > 0 else state.pool_slots[p]


def fits_now(state: FleetState, p: int, r: GangRequest) -> bool:
    """Whether the aggregates say the gang fits pool ``p`` now (vCPUs on shared nodes
    and ``exclude`` aside, so ``pick_nodes`` may still say no)."""
    if needs_domain(r):
        # a domain with at least ``nodes`` fully free nodes (O(1), no bucket scan)
        return r.nodes <= state.pool_npd[p] and state.pools_with_free_domain(r.nodes)[p] > 0
    return state.nodes_with_at_least(p, slots_needed(state, p, r)) >= r.nodes


def fitting_pools(state: FleetState, pools: Sequence[int], r: GangRequest) -> list[int]:
    """Those of ``pools`` (order kept) where ``fits_now``: one pass over per-pool
    counters instead of a call per pool (the hot loop of a decision)."""
    n = r.nodes
    if needs_domain(r):
        npd = state.pool_npd
        if n >= len(state._datl):
            return []
        row = state.pools_with_free_domain(n)
        return [p for p in pools if row[p] and n <= npd[p]]
    g = r.gpus_per_node
    if g <= 0 or n <= 0:
        return [p for p in pools if fits_now(state, p, r)]
    if g >= len(state._atl):
        return []
    row = state.pools_with_at_least(g)
    slots = state.pool_slots
    return [p for p in pools if row[p] >= n and g <= slots[p]]


def iter_fitting_pools(state: FleetState, pools: Sequence[int], r: GangRequest) -> Iterator[int]:
    """``fitting_pools`` lazily (the same pools in the same order), for a caller that may
    stop at the first few; the counters must not change while it iterates."""
    n = r.nodes
    if needs_domain(r):
        npd = state.pool_npd
        if n >= len(state._datl):
            return iter(())
        row = state.pools_with_free_domain(n)
        return (p for p in pools if row[p] and n <= npd[p])
    g = r.gpus_per_node
    if g <= 0 or n <= 0:
        return (p for p in pools if fits_now(state, p, r))
    if g >= len(state._atl):
        return iter(())
    row = state.pools_with_at_least(g)
    slots = state.pool_slots
    return (p for p in pools if row[p] >= n and g <= slots[p])


def largest_free_domain(state: FleetState, p: int) -> int:
    """Most idle nodes any domain of pool ``p`` has."""
    hist = state.domain_histogram(p)
    for c in range(len(hist) - 1, -1, -1):
        if hist[c]:
            return c
    return 0


def pick_nodes(
    state: FleetState, p: int, r: GangRequest, exclude: Set[int] | None = None
) -> list[int] | None:
    """Nodes of pool ``p`` for every member of ``r``, or None when it does not fit."""
    n = r.nodes
    g = slots_needed(state, p, r)
    big = state.pool_slots[p]
    npd = state.pool_npd[p]
    out: list[int] = []
    if needs_domain(r):
        for c in range(n, npd + 1):
            doms = state.domains_with_free(p, c)
            for i in range(len(doms) - 1, -1, -1):
                free = state.domain_free(doms[i])
                if not exclude:
                    return free[len(free) - n :][::-1]
                got = [x for x in reversed(free) if x not in exclude]
                if len(got) >= n:
                    return got[:n]
        return None
    if state.nodes_with_at_least(p, g) < n:
        return None
    if n == 1 and g == big and npd == 1 and not exclude:
        b = state.bucket(p, big)
        return [b[-1]]
    v = r.vcpus_per_node
    vcpu = state._vcpu
    nat = state._native
    if nat is not None:  # the same scans, compiled (``_fleetc.take_from``)
        ex = exclude if exclude else None
        for k in range(g, big):
            if nat.take_from(state.bucket(p, k), ex, vcpu, v, n, out):
                return out
        if npd == 1 and exclude:
            if nat.take_from(state.bucket(p, big), ex, vcpu, -math.inf, n, out):
                return out
            return None
    else:
        for k in range(g, big):
            b = state.bucket(p, k)
            for i in range(len(b) - 1, -1, -1):
                x = b[i]
                if (exclude and x in exclude) or vcpu[x] + 1e-6 < v:
                    continue
                out.append(x)
                if len(out) == n:
                    return out
    if npd == 1:
        b = state.bucket(p, big)
        if not exclude:  # the last ones, newest first (what the loop below takes)
            need = n - len(out)
            if len(b) < need:
                return None
            out.extend(b[len(b) - need :][::-1])
            return out
        for i in range(len(b) - 1, -1, -1):
            x = b[i]
            if exclude and x in exclude:
                continue
            out.append(x)
            if len(out) == n:
                return out
        return None
    # each domain's idle nodes (the fewest first), newest first, the excluded skipped
    return state.take_domain_idle(p, n, out, exclude)
