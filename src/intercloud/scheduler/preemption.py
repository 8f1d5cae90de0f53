"""PostFilter: preemption. When a gang cannot be placed, find the running gangs whose
eviction makes room for it, as few and as cheap as possible.

Who may be evicted for request ``r``: running gangs that are ``preemptible`` and have a
lower priority than ``r`` (spot and other low-priority work), plus the jobs the tenant
ledger names as reclaimable (other tenants' work on borrowed quota, when ``r`` is within
its tenant's guarantee). Jobs placed in the same scheduling cycle are never evicted.

How: per candidate pool (and, for an NVLink gang, per domain), add victims greedily —
most newly usable nodes first, then least work lost since their last checkpoint
(GPU-seconds) — until the gang fits; then prune: drop victims, most work lost first,
while the gang still fits. Fitting is monotone in the freed capacity, so after pruning no
single victim can be spared, hence no proper subset of the victims suffices (minimal by
inclusion). Among pools the set with the fewest victims wins, then the least work lost,
then the cheaper pool. (Fewest overall is a set-cover problem; the greedy pass is the
usual approximation, the pruning makes the result minimal.)

Provider events (spot reclaimed, node failed, region lost) also evict: see
``evict_for_event``; evicted jobs are requeued by the caller from their last checkpoint
(``requeued``).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass, replace

from intercloud.scheduler.fleet.state import Allocation, FleetState
from intercloud.scheduler.placement.filter import needs_domain
from intercloud.scheduler.placement.pick import slots_needed
from intercloud.scheduler.requests import GangRequest
from intercloud.scheduler.tenancy.ledger import Reclaimable


@dataclass(frozen=True, slots=True)
class Victims:
    pool: int
    jobs: tuple[int, ...]
    work_lost: float


def fits_after(state: FleetState, p: int, r: GangRequest, victims: Iterable[Allocation]) -> bool:
    """Whether ``r`` fits pool ``p`` (by the aggregates) once ``victims`` are gone."""
    delta: dict[int, int] = {}
    for a in victims:
        for x in a.nodes:
            delta[x] = delta.get(x, 0) + a.slots
    g = slots_needed(state, p, r)
    if needs_domain(r):
        big = state.pool_slots[p]
        npd = state.pool_npd[p]
        if r.nodes <= npd and state.pools_with_free_domain(r.nodes)[p]:
            return True
        gain: dict[int, int] = {}
        for x, dl in delta.items():
            lv = state.level(x)
            if state.usable(x) and lv < big and lv + dl == big:
                d = int(state.domain[x])
                gain[d] = gain.get(d, 0) + 1
        return any(state.domain_free_count(d) + k >= r.nodes for d, k in gain.items())
    count = state.nodes_with_at_least(p, g)
    for x, dl in delta.items():
        lv = state.level(x)
        if state.usable(x) and lv < g <= lv + dl:
            count += 1
    return count >= r.nodes


def _prune(
    state: FleetState, p: int, r: GangRequest, chosen: list[Allocation], now_s: float
) -> list[Allocation]:
    keep = list(chosen)
    for a in sorted(chosen, key=lambda a: (-a.work_lost_s(now_s), -a.job_id)):
        trial = [b for b in keep if b is not a]
        if fits_after(state, p, r, trial):
            keep = trial
    return keep


def _greedy(
    state: FleetState, p: int, r: GangRequest, eligible: list[Allocation], now_s: float
) -> list[Allocation] | None:
    if needs_domain(r):
        big = state.pool_slots[p]
        by_dom: dict[int, list[Allocation]] = {}
        for a in eligible:
            for d in sorted({int(state.domain[x]) for x in a.nodes}):
                by_dom.setdefault(d, []).append(a)
        best: tuple[int, float, int] | None = None
        best_set: list[Allocation] | None = None
        for d, cands in sorted(by_dom.items()):

            def full_in_d(a: Allocation, d: int = d) -> int:
                return sum(
                    1
                    for x in a.nodes
                    if int(state.domain[x]) == d and state.level(x) + a.slots == big
                )

            cands.sort(key=lambda a: (-full_in_d(a), a.work_lost_s(now_s), a.job_id))
            chosen: list[Allocation] = []
            for a in cands:
                chosen.append(a)
                if fits_after(state, p, r, chosen):
                    key = (len(chosen), sum(b.work_lost_s(now_s) for b in chosen), d)
                    if best is None or key < best:
                        best, best_set = key, list(chosen)
                    break
        return best_set
    g = slots_needed(state, p, r)
    # Same order as sorting by (-nodes it makes fit, work lost, job id) and the same stop as calling
    # fits_after after each victim, but only the victims taken are ordered (a heap) and
    # the fit is counted incrementally (eligible lists run to hundreds of jobs).
    lvl = state._lvl
    usable = state._usable
    big = state.pool_slots[p]
    keyed: list[tuple[int, float, int, int]] = []
    for i, a in enumerate(eligible):
        s = a.slots
        if s == big:
            # a whole-node gang: its nodes have no free slot (0 < g <= s), each one fits
            gain = len(a.nodes)
        else:
            gain = 0
            for x in a.nodes:
                lv = lvl[x]
                if lv < g <= lv + s:
                    gain += 1
        lost = max(0.0, now_s - a.saved_s(now_s)) * max(a.request.gpus_per_node * len(a.nodes), 1)
        keyed.append((-gain, lost, a.job_id, i))
    heapq.heapify(keyed)
    count = state.nodes_with_at_least(p, g)
    delta: dict[int, int] = {}
    chosen = []
    while keyed:
        a = eligible[heapq.heappop(keyed)[3]]
        chosen.append(a)
        s = a.slots
        for x in a.nodes:
            old = delta.get(x, 0)
            delta[x] = old + s
            lv = lvl[x]
            if usable[x] and lv + old < g <= lv + old + s:
                count += 1
        if count >= r.nodes:
            return chosen
    return None


def _in_pool(pool_jobs: dict[int, None], reclaimable: Set[int]) -> set[int]:
    """The jobs of ``reclaimable`` among ``pool_jobs`` (a pool's running jobs)."""
    if isinstance(reclaimable, Reclaimable):
        return reclaimable.among(pool_jobs)
    if isinstance(reclaimable, set | frozenset):
        return pool_jobs.keys() & reclaimable
    return {j for j in pool_jobs if j in reclaimable}


def find_victims(
    state: FleetState,
    r: GangRequest,
    pools: Sequence[int],
    now_s: float,
    protect: Set[int] = frozenset(),
    reclaimable: Set[int] = frozenset(),
    max_pools: int = 8,
    memo: dict[tuple[int, int, bool, int], dict[int, int]] | None = None,
) -> Victims | None:
    """The cheapest inclusion-minimal set of victims that makes room for ``r`` in one of
    ``pools`` (cost order), or None. Only the first ``max_pools`` pools where a set is
    found are compared (one victim is the best possible: the search stops there).

    ``memo`` (kept by the caller between calls on one state): per request shape and
    priority, the ``pool_version`` at which a pool had no victims; such a pool is skipped
    while unchanged (fewer protected or reclaimable jobs can only find fewer victims)."""
    best: tuple[int, float, int] | None = None
    out: Victims | None = None
    allocs = state.allocations
    found = 0
    q0 = r.priority
    version = state.pool_version
    none_at: dict[int, int] | None = None
    reclaim = bool(reclaimable)  # (a ledger's view counts its jobs: ask once)
    if memo is not None and not reclaim:
        none_at = memo.setdefault((r.gpus_per_node, r.nodes, needs_domain(r), q0), {})
    prio = state.pool_prio
    # no job anywhere of a lower priority: no victims (skips the pass over pools)
    if not reclaim and not any(d and min(d) < q0 for d in state.acc_prio):
        return None
    for rank, p in enumerate(pools):
        if not reclaim and not (prio[p] and min(prio[p]) < q0):
            continue
        if found >= max_pools or (best is not None and best[0] <= 1):
            break  # (no later pool beats one victim, nor none: it ranks later)
        if none_at is not None and none_at.get(p) == version[p]:
            continue
        skipped = False
        if reclaim:
            # reclaimable (the ledger's borrowing jobs met with the pool's, not a
            # membership call per job of the pool) or preemptible of a lower priority
            # (the pool's by-priority index); in any order, as below
            cand = _in_pool(state._pool_jobs[p], reclaimable)
            for q, js in state.pool_prio_jobs(p).items():
                if q < q0:
                    cand.update(js)
            eligible = [allocs[j] for j in cand if j not in protect]
        else:
            # the pool's preemptible jobs by priority (no pass over all its jobs; the
            # order of ``eligible`` does not matter: every ordering below is total)
            ids = [j for q, js in state.pool_prio_jobs(p).items() if q < q0 for j in js]
            if protect:
                n_ids = len(ids)
                ids = [j for j in ids if j not in protect]
                skipped = len(ids) < n_ids
            eligible = [allocs[j] for j in ids]
        # Fitting is monotone in the victims: when evicting every eligible job does not
        # make room, the greedy pass cannot either (for NVLink gangs, check that first
        # and skip its per-domain sorts; the other greedy pass counts incrementally).
        chosen: list[Allocation] | None = None
        if eligible and fits_after(state, p, r, ()):
            # room already (the aggregates; the turn's pick failed for another reason):
            # the greedy pass takes one victim and the pruning drops it
            chosen = []
        elif eligible and (not needs_domain(r) or fits_after(state, p, r, eligible)):
            chosen = _greedy(state, p, r, eligible, now_s)
        if chosen is None:
            if none_at is not None and not skipped:
                none_at[p] = version[p]
            continue
        if chosen:
            chosen = _prune(state, p, r, chosen, now_s)
        found += 1
        work = sum(a.work_lost_s(now_s) for a in chosen)
        key = (len(chosen), work, rank)
        if best is None or key < best:
            best = key
            out = Victims(p, tuple(sorted(a.job_id for a in chosen)), work)
    return out


def find_victims_scan(
    state: FleetState,
    r: GangRequest,
    pools: Sequence[int],
    now_s: float,
    protect: Set[int] = frozenset(),
    reclaimable: Set[int] = frozenset(),
    max_pools: int = 8,
    memo: dict[tuple[int, int, bool, int], dict[int, int]] | None = None,
) -> Victims | None:
    """``find_victims`` as it was (the reference the exactness tests compare it with,
    ``Scheduler._victim_index`` off): a reclaiming search asks the ledger's view about
    every job of each pool, greedy-searches a pool the gang already fits, and goes on
    after a set with no victim."""
    best: tuple[int, float, int] | None = None
    out: Victims | None = None
    allocs = state.allocations
    found = 0
    q0 = r.priority
    version = state.pool_version
    none_at: dict[int, int] | None = None
    reclaim = bool(reclaimable)  # (a ledger's view counts its jobs: ask once)
    if memo is not None and not reclaim:
        none_at = memo.setdefault((r.gpus_per_node, r.nodes, needs_domain(r), q0), {})
    prio = state.pool_prio
    # no job anywhere of a lower priority: no victims (skips the pass over pools)
    if not reclaim and not any(d and min(d) < q0 for d in state.acc_prio):
        return None
    for rank, p in enumerate(pools):
        if not reclaim and not (prio[p] and min(prio[p]) < q0):
            continue
        if found >= max_pools or (best is not None and best[0] == 1):
            break
        if none_at is not None and none_at.get(p) == version[p]:
            continue
        skipped = False
        if reclaim:
            # preemptible of a lower priority (the pool's by-priority index) or
            # reclaimable, in the pool's job order
            lower = {j for q, js in state.pool_prio_jobs(p).items() if q < q0 for j in js}
            eligible = [
                allocs[j]
                for j in state._pool_jobs[p]
                if (j in lower or j in reclaimable) and j not in protect
            ]
        else:
            # the pool's preemptible jobs by priority (no pass over all its jobs; the
            # order of ``eligible`` does not matter: every ordering below is total)
            ids = [j for q, js in state.pool_prio_jobs(p).items() if q < q0 for j in js]
            if protect:
                n_ids = len(ids)
                ids = [j for j in ids if j not in protect]
                skipped = len(ids) < n_ids
            eligible = [allocs[j] for j in ids]
        # Fitting is monotone in the victims: when evicting every eligible job does not
        # make room, the greedy pass cannot either (for NVLink gangs, check that first
        # and skip its per-domain sorts; the other greedy pass counts incrementally).
        chosen = None
        if eligible and (not needs_domain(r) or fits_after(state, p, r, eligible)):
            chosen = _greedy(state, p, r, eligible, now_s)
        if chosen is None:
            if none_at is not None and not skipped:
                none_at[p] = version[p]
            continue
        chosen = _prune(state, p, r, chosen, now_s)
        found += 1
        work = sum(a.work_lost_s(now_s) for a in chosen)
        key = (len(chosen), work, rank)
        if best is None or key < best:
            best = key
            out = Victims(p, tuple(sorted(a.job_id for a in chosen)), work)
    return out


def requeued(alloc: Allocation) -> GangRequest:
    """The request to queue again for an evicted job: it resumes from its last checkpoint,
    so its expected remaining time shrinks by the work saved; queue position (submit
    time) is kept."""
    r = alloc.request
    saved = max(0.0, alloc.last_checkpoint_s - alloc.start_s)
    dur = None if r.duration_s is None else max(0.0, r.duration_s - saved)
    return replace(r, duration_s=dur, last_checkpoint_s=alloc.last_checkpoint_s)


def jobs_on_nodes(state: FleetState, nodes: Iterable[int]) -> list[int]:
    """Jobs with a member on any of ``nodes``, ascending."""
    out: set[int] = set()
    for n in nodes:
        out.update(state.jobs_on(n))
    return sorted(out)
