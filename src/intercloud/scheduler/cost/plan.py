"""Where the gangs of one cycle (or batch) should go when cheap capacity is contested:
the *cost plan*.

Greedy in queue order hands the cheapest pools to whoever comes first. When those pools
cannot hold everybody, that costs money: a gang whose next option is a spot GPU at $1 an
hour takes the reserved GPU (free: the contract is paid) that a gang whose next option is
$10 on demand needed. The plan decides *where* without touching the order: the queue
policy still decides who is tried first, and the walk never holds a gang because of the
plan while a pool has room for it at its turn.

How:

1. Gangs are grouped into *classes*: identical candidate pools in the same cost order,
   identical cost per pool, units, GPUs and domain need (``GangClass``); the gangs of a
   class are interchangeable, so a cycle of hundreds of gangs is a few dozen classes.
2. **Regret** (the regret heuristic of the generalised assignment problem, Martello and
   Toth, *Knapsack Problems*, 1990, ch. 7): a class's regret is what one unit (GPU;
   CPU-only: node) costs more per hour on its next price level with room than on its
   cheapest; infinite when it has a single level with room. The class with the largest
   regret fills its cheapest level's pool with room (of tied pools, the one the other
   classes want least), then the next; regrets are kept in a heap and re-scored lazily.
   Caps: ``DiversificationCaps.headroom`` of the fleet as allotted so far.
3. **Local search**: a gang moves to a cheaper candidate, into room left there or into
   the place of a gang of another class that moves on (a two-step ejection chain, swaps
   included) whenever the hourly cost falls.

The outcome is an *allotment*: per class, how many of its gangs each pool should take.
The caller's walk (queue order) tries, for each gang, its class's allotted pools with
count left first, cheapest first, then all its candidates cheapest first.

Measured against the batch MILP on the benchmark's batches (bench/RESULTS.md): queue
order alone is 8-10% above the optimum. A linear programme over the classes, rounded, was
tried and lost to the regret rule (rounding gangs of 8-72 GPUs strands cheap capacity)
while costing ten times as much.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

from intercloud.scheduler.cost.caps import DiversificationCaps

_EPS = 1e-9


@dataclass(slots=True)
class GangClass:
    """Interchangeable gangs: candidate pools ``ids`` cheapest first with the cost of
    one gang on each (USD per hour) and, when given, the most gangs of the class each
    pool can take now (``limit``); ``units`` of capacity and ``gpus`` (for the caps) per
    gang; ``domain``: each gang takes a whole free NVLink domain; ``count`` gangs, the
    first at position ``first`` in the queue."""

    key: Hashable
    ids: list[int]
    cost: list[float]
    units: int
    gpus: int
    count: int
    first: int
    domain: bool = False
    limit: list[int] | None = None


@dataclass(slots=True)
class CapTracker:
    """The fleet's GPUs as the caps count them (``cost.caps``): ``total`` is G,
    ``capped[code]`` is g_p; ``provider[pool]`` is the provider code of each pool (a
    position in ``names``) and ``is_capped[pool]`` whether it counts (not reserved)."""

    caps: DiversificationCaps | None
    names: Sequence[str]
    provider: Sequence[int]
    is_capped: Sequence[bool]
    total: float
    capped: list[float]
    _share: list[float] = field(default_factory=list)

    def room(self, pool: int, gpus: int) -> int:
        """How many gangs of ``gpus`` GPUs the caps let onto ``pool`` now
        (``DiversificationCaps.headroom``, with the shares looked up once)."""
        caps = self.caps
        if caps is None or not gpus or not self.is_capped[pool]:
            return 1 << 30
        if not self._share:
            self._share = [caps.share(v) for v in self.names]
        code = self.provider[pool]
        s = self._share[code]
        if s >= 1.0:
            return 1 << 30
        g = self.capped[code]
        h = max(caps.min_fleet_gpus - self.total, (s * self.total - g) / (1.0 - s))
        return max(0, math.floor(h / gpus + _EPS))

    def take(self, pool: int, gpus: int, k: int) -> None:
        self.total += gpus * k
        if self.is_capped[pool]:
            self.capped[self.provider[pool]] += gpus * k


@dataclass(slots=True)
class Plan:
    """Per class key: ``{pool: gangs}`` still to place there (the walk decrements)."""

    allot: dict[Hashable, dict[int, int]] = field(default_factory=dict)

    def first(self, key: Hashable) -> list[int]:
        """The class's allotted pools with count left, cheapest first."""
        a = self.allot.get(key)
        return [p for p, k in a.items() if k > 0] if a else []

    def placed(self, key: Hashable, pool: int) -> None:
        a = self.allot.get(key)
        if a is not None and a.get(pool, 0) > 0:
            a[pool] -= 1

    def __bool__(self) -> bool:
        return bool(self.allot)


def _ub(c: GangClass, i: int, p: int, out: Plan, free: list[float], domains: list[float]) -> int:
    """Most more gangs of ``c`` that pool ``p`` (its ``i``-th candidate) holds."""
    k = c.count if c.units <= 0 else min(c.count, int(free[p] // c.units))
    if c.domain and math.isfinite(domains[p]):
        k = min(k, int(domains[p]))
    if c.limit is not None:
        a = out.allot.get(c.key)
        k = min(k, c.limit[i] - (a.get(p, 0) if a else 0))
    return max(k, 0)


def plan(
    classes: Sequence[GangClass],
    free_units: Sequence[float],
    free_domains: Sequence[float],
    caps: CapTracker,
    always: bool = False,
) -> Plan:
    """The allotment of the module docstring. ``free_units[p]``: units pool ``p`` has
    left; ``free_domains[p]``: its whole free NVLink domains (inf: not counted); neither
    is changed. ``caps`` is changed to the fleet after the plan (pass a copy to keep it).
    Unless ``always``, an empty plan when no class can miss its cheapest price level
    (``uncontested``): cheapest first is then optimal whatever the order."""
    # Python floats in lists (pass ``array.tolist()``, not an array: the plan reads single
    # entries thousands of times and numpy scalars are slow)
    free = list(free_units)
    domains = list(free_domains)
    if not always and uncontested(classes, free, domains, caps):
        return Plan()
    out = _regret_plan(classes, free, domains, caps)
    _improve(classes, out, free, domains, caps)
    _fill(classes, out, free, domains, caps)  # room that the local search freed
    for c in classes:  # cheapest first, as the walk wants them
        a = out.allot.get(c.key)
        if not a:
            continue
        rank = {p: i for i, p in enumerate(c.ids)}
        items = sorted(((p, k) for p, k in a.items() if k > 0), key=lambda pk: rank[pk[0]])
        a.clear()
        a.update(items)
    return out


def uncontested(
    classes: Sequence[GangClass], free: list[float], domains: list[float], caps: CapTracker
) -> bool:
    """Whether every class surely gets its cheapest price level whatever the order (then
    cheapest first is optimal and no plan is needed): for each class, all the units of
    the classes wanting any pool of its cheapest level fit in what that level holds for
    it, and the caps' headroom on its capped pools covers every class's GPUs. A cheap
    test (one pass over the levels), not an exact one: "contested" may be wrong, which
    only costs a plan."""
    level: list[list[tuple[int, int]]] = []
    by_pool: dict[int, list[int]] = {}
    for ci, c in enumerate(classes):
        pools: list[tuple[int, int]] = []
        c0: float | None = None
        for i, p in enumerate(c.ids):
            if c0 is not None and c.cost[i] > c0 + _EPS:
                break
            if _ub(c, i, p, _EMPTY, free, domains) <= 0:
                continue
            c0 = c.cost[i] if c0 is None else c0
            pools.append((i, p))
            by_pool.setdefault(p, []).append(ci)
        level.append(pools)
    gpus = float(sum(c.gpus * c.count for c in classes))
    for c, pools in zip(classes, level, strict=True):
        if not pools:
            continue
        rivals: set[int] = set()
        for _, p in pools:
            rivals.update(by_pool[p])
        want = sum(classes[k].units * classes[k].count for k in rivals)
        room = sum(_ub(c, i, p, _EMPTY, free, domains) * c.units for i, p in pools)
        if want > room:
            return False
        if c.gpus and any(caps.room(p, c.gpus) * c.gpus < gpus for _, p in pools):
            return False
    return True


_EMPTY = Plan()


def _regret(
    c: GangClass, out: Plan, free: list[float], domains: list[float], caps: CapTracker
) -> float:
    """Per unit, the next price level's cost minus the cheapest with room (inf: no next
    level with room; -1: no room at all)."""
    c0: float | None = None
    for i in range(len(c.ids)):
        p = c.ids[i]
        if _ub(c, i, p, out, free, domains) <= 0 or caps.room(p, c.gpus) <= 0:
            continue
        if c0 is None:
            c0 = c.cost[i]
        elif c.cost[i] > c0 + _EPS:
            return (c.cost[i] - c0) / max(c.units, 1)
    return -1.0 if c0 is None else math.inf


def _regret_plan(
    classes: Sequence[GangClass], free: list[float], domains: list[float], caps: CapTracker
) -> Plan:
    """The regret rule: the class whose next price level costs most more per unit fills
    its cheapest pool with room; then the next. Regrets are kept in a heap and redone
    lazily (a class popped is re-scored and goes back if it no longer leads): a take
    only lowers capacity, and re-scoring every class after every take cost 0.1-1 s on
    a thousand gangs."""
    out = Plan()
    left = [c.count for c in classes]
    pressure = _pressure(classes, free)
    heap: list[tuple[float, int, int]] = []
    for ci, c in enumerate(classes):
        r = _regret(c, out, free, domains, caps)
        if r >= 0:
            heap.append((-r, c.first, ci))
    heapq.heapify(heap)
    while heap:
        _, first, ci = heapq.heappop(heap)
        c = classes[ci]
        r = _regret(c, out, free, domains, caps)
        if r < 0:
            continue  # no room left anywhere: capacity only shrinks as the plan goes
        entry = (-r, first, ci)
        if heap and entry > heap[0]:
            heapq.heappush(heap, entry)  # no longer leads: score the leader afresh
            continue
        # the cheapest price level with room; among its pools, the least wanted by the
        # other classes at the start (a gang that takes H100 or H200 at the same price
        # leaves the type another class cannot do without)
        pick: tuple[float, int, int] | None = None
        c0: float | None = None
        for i, p in enumerate(c.ids):
            if c0 is not None and c.cost[i] > c0 + _EPS:
                break
            k = min(left[ci], _ub(c, i, p, out, free, domains), caps.room(p, c.gpus))
            if k <= 0:
                continue
            if c0 is None:
                c0 = c.cost[i]
            if pick is None or pressure.get(p, 0.0) < pick[0]:
                pick = (pressure.get(p, 0.0), p, k)
        if pick is not None:
            _take(out, c, pick[1], pick[2], free, domains, caps)
            left[ci] -= pick[2]
        if left[ci]:
            heapq.heappush(heap, entry)
    return out


def _pressure(classes: Sequence[GangClass], free: list[float]) -> dict[int, float]:
    """Per pool: the units that classes whose cheapest price level holds it want, over
    its free units."""
    want: dict[int, float] = {}
    for c in classes:
        if not c.ids:
            continue
        c0 = c.cost[0]
        for p, cost in zip(c.ids, c.cost, strict=True):
            if cost > c0 + _EPS:
                break
            want[p] = want.get(p, 0.0) + c.units * c.count
    return {p: w / max(float(free[p]), 1.0) for p, w in want.items()}


def _improve(
    classes: Sequence[GangClass],
    out: Plan,
    free: list[float],
    domains: list[float],
    caps: CapTracker,
) -> None:
    """Local search on the allotment: a gang of class ``c`` on pool ``q`` moves to a
    cheaper candidate ``p``, into room left there or into the place of a gang of another
    class ``d`` that moves on to a pool ``r`` with room, whenever the hourly cost falls
    (a move, or a two-step ejection chain). Each step lowers the cost, so it ends;
    ``_IMPROVE_STEPS`` bounds the steps and ``_TRIES_PER_CLASS`` the tentative moves (most
    chains tried fail: the search is what costs, so it gets a budget per class)."""
    pos = [{p: i for i, p in enumerate(c.ids)} for c in classes]
    on: dict[int, list[int]] = {}  # pool -> classes with gangs allotted there
    for ci, c in enumerate(classes):
        for p in out.allot.get(c.key, {}):
            on.setdefault(p, []).append(ci)
    steps = 0
    budget = [_TRIES_PER_CLASS * len(classes)]
    improved = True
    while improved and steps < _IMPROVE_STEPS and budget[0] > 0:
        improved = False
        for ci, c in enumerate(classes):
            a = out.allot.get(c.key)
            if not a:
                continue
            for q in [q for q, k in a.items() if k > 0]:
                while a.get(q, 0) > 0 and steps < _IMPROVE_STEPS:
                    if not _improve_one(classes, ci, q, pos, on, out, free, domains, caps, budget):
                        break
                    steps += 1
                    improved = True


_IMPROVE_STEPS = 10_000
_TRIES_PER_CLASS = 64


def _fits_one(
    c: GangClass,
    i: int,
    p: int,
    out: Plan,
    free: list[float],
    domains: list[float],
    caps: CapTracker,
    extra_units: float = 0.0,
) -> bool:
    """Whether one more gang of ``c`` fits pool ``p`` (its ``i``-th candidate), with
    ``extra_units`` freed there first."""
    if c.units > free[p] + extra_units + _EPS:
        return False
    if c.domain and math.isfinite(domains[p]) and domains[p] < 1:
        return False
    if c.limit is not None:
        a = out.allot.get(c.key)
        if (a.get(p, 0) if a else 0) >= c.limit[i]:
            return False
    return caps.room(p, c.gpus) >= 1


def _unplace(
    out: Plan, c: GangClass, p: int, free: list[float], domains: list[float], caps: CapTracker
) -> None:
    out.allot[c.key][p] -= 1
    free[p] += c.units
    if c.domain and math.isfinite(domains[p]):
        domains[p] += 1
    caps.take(p, c.gpus, -1)


def _try_move(
    out: Plan,
    c: GangClass,
    ci: int,
    j: int,
    src: int,
    on: dict[int, list[int]],
    free: list[float],
    domains: list[float],
    caps: CapTracker,
    force: bool = False,
) -> bool:
    """Move one gang of ``c`` from ``src`` to its ``j``-th candidate if it fits there
    once it has left ``src`` (the caps then count it once)."""
    dst = c.ids[j]
    if not force:
        # necessary conditions first (the common refusals), without touching anything
        if free[dst] + (c.units if dst == src else 0) + _EPS < c.units:
            return False
        if c.limit is not None and dst != src:
            a = out.allot.get(c.key)
            if (a.get(dst, 0) if a else 0) >= c.limit[j]:
                return False  # the pool's nodes (or domains) that fit the class are taken
        if c.domain and dst != src and domains[dst] < 1:
            return False
        if (
            caps.caps is not None
            and c.gpus
            and caps.is_capped[dst]
            and (not caps.is_capped[src] or caps.provider[src] != caps.provider[dst])
            and caps.room(dst, c.gpus) < 1
        ):
            return False  # leaving src only shrinks dst's headroom
    _unplace(out, c, src, free, domains, caps)
    if not force and not _fits_one(c, j, dst, out, free, domains, caps):
        _take(out, c, src, 1, free, domains, caps)
        return False
    _take(out, c, dst, 1, free, domains, caps)
    if ci not in on.setdefault(dst, []):
        on[dst].append(ci)
    return True


def _improve_one(
    classes: Sequence[GangClass],
    ci: int,
    q: int,
    pos: list[dict[int, int]],
    on: dict[int, list[int]],
    out: Plan,
    free: list[float],
    domains: list[float],
    caps: CapTracker,
    budget: list[int],
) -> bool:
    """One improving move or chain for one gang of class ``ci`` on pool ``q``; each
    tentative move spends one of ``budget[0]``."""
    c = classes[ci]
    iq = pos[ci][q]
    cq = c.cost[iq]
    for i in range(iq):
        p = c.ids[i]
        gain = cq - c.cost[i]
        if gain <= _EPS:
            break  # candidates are cheapest first
        room = free[p]
        if room + _EPS >= c.units and _try_move(out, c, ci, i, q, on, free, domains, caps):
            # the same move pays for every gang of the class on q while p has room
            while out.allot[c.key].get(q, 0) > 0 and _try_move(
                out, c, ci, i, q, on, free, domains, caps
            ):
                pass
            return True
        if c.domain:
            continue  # chains move single nodes' worth of capacity, not whole domains
        if c.limit is not None and out.allot[c.key].get(p, 0) >= c.limit[i]:
            continue  # c could not go to p even with room made there
        for di in on.get(p, ()):
            if di == ci:
                continue
            d = classes[di]
            if out.allot.get(d.key, {}).get(p, 0) <= 0 or d.domain:
                continue
            if c.units > room + d.units + _EPS:
                continue
            ip = pos[di][p]
            dp = d.cost[ip]
            for j, r in enumerate(d.ids):
                loss = d.cost[j] - dp
                if loss >= gain - _EPS:
                    break
                if r == p or free[r] + (c.units if r == q else 0) + _EPS < d.units:
                    continue
                budget[0] -= 1
                if budget[0] < 0:
                    return False
                if r == q:  # a swap: c leaves q first, so that d fits there
                    _unplace(out, c, q, free, domains, caps)
                    if _try_move(out, d, di, j, p, on, free, domains, caps):
                        if _fits_one(c, i, p, out, free, domains, caps):
                            _take(out, c, p, 1, free, domains, caps)
                            on.setdefault(p, [])
                            return True
                        _try_move(out, d, di, ip, r, on, free, domains, caps, force=True)
                    _take(out, c, q, 1, free, domains, caps)
                    continue
                # d: p -> r, then c: q -> p (the caps see the moves one by one)
                if not _try_move(out, d, di, j, p, on, free, domains, caps):
                    continue
                if _try_move(out, c, ci, i, q, on, free, domains, caps):
                    return True
                _try_move(out, d, di, ip, r, on, free, domains, caps, force=True)  # undo
    return False


def _fill(
    classes: Sequence[GangClass],
    out: Plan,
    free: list[float],
    domains: list[float],
    caps: CapTracker,
) -> None:
    """Gangs the plan left out take, class by class, the cheapest pools with room."""
    for c in classes:
        a = out.allot.get(c.key)
        left = c.count - (sum(a.values()) if a else 0)
        for i, p in enumerate(c.ids):
            if left <= 0:
                break
            k = min(left, _ub(c, i, p, out, free, domains), caps.room(p, c.gpus))
            if k > 0:
                _take(out, c, p, k, free, domains, caps)
                left -= k


def _take(
    out: Plan,
    c: GangClass,
    p: int,
    k: int,
    free: list[float],
    domains: list[float],
    caps: CapTracker,
) -> None:
    got = out.allot.setdefault(c.key, {})
    got[p] = got.get(p, 0) + k
    free[p] -= c.units * k
    if c.domain and math.isfinite(domains[p]):
        domains[p] -= k
    caps.take(p, c.gpus, k)
