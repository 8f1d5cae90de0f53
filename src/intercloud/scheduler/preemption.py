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

from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass, replace

from intercloud.scheduler.fleet.state import Allocation, FleetState
from intercloud.scheduler.placement.filter import needs_domain
from intercloud.scheduler.placement.pick import slots_needed
from intercloud.scheduler.requests import GangRequest


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
        if any(state.domains_with_free(p, c) for c in range(r.nodes, npd + 1)):
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


def _gain(state: FleetState, a: Allocation, g: int) -> int:
    return sum(1 for x in a.nodes if state.level(x) < g <= state.level(x) + a.slots)


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
    order = sorted(eligible, key=lambda a: (-_gain(state, a, g), a.work_lost_s(now_s), a.job_id))
    chosen = []
    for a in order:
        chosen.append(a)
        if fits_after(state, p, r, chosen):
            return chosen
    return None


def find_victims(
    state: FleetState,
    r: GangRequest,
    pools: Sequence[int],
    now_s: float,
    protect: Set[int] = frozenset(),
    reclaimable: Set[int] = frozenset(),
    max_pools: int = 8,
) -> Victims | None:
    """The cheapest inclusion-minimal set of victims that makes room for ``r`` in one of
    ``pools`` (cost order), or None. Only the first ``max_pools`` pools where a set is
    found are compared (one victim is the best possible: the search stops there)."""
    best: tuple[int, float, int] | None = None
    out: Victims | None = None
    allocs = state.allocations
    found = 0
    q0 = r.priority
    for rank, p in enumerate(pools):
        if not reclaimable and not any(q < q0 for q in state.pool_prio[p]):
            continue
        if found >= max_pools or (best is not None and best[0] == 1):
            break
        eligible = []
        for j in state.pool_jobs(p):
            if j in protect:
                continue
            a = allocs[j]
            q = a.request
            if (q.preemptible and q.priority < r.priority) or j in reclaimable:
                eligible.append(a)
        if not eligible:
            continue
        chosen = _greedy(state, p, r, eligible, now_s)
        if chosen is None:
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
