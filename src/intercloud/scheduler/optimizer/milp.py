"""The batch optimizer: a batch of pending jobs assigned to pools at minimum cost (MILP).

``solve_batch`` is the reference the fast greedy path is measured against, and a policy a
user may choose for small batches (``BatchOptimizer``). ``greedy_batch`` solves the same
problem with the fast path's rule, so both can be compared on identical inputs.

The problem (pool level, not node level):

* Each job goes to at most one pool among its candidates (``PoolCosts.rank``: accelerator,
  GPUs per node, spot policy, provider/region filters, NVLink domain fit, hourly cap),
  or stays unassigned.
* Capacity is per pool, in GPUs (a CPU-only job's unit is a node, and a CPU pool's
  capacity is its free nodes): ``free_gpus[p]`` is what the batch may still use in pool
  ``p``, including an elastic pool's headroom up to ``max_nodes``. Topology stands in as
  *whole free domains*: a job with topology ``nvlink_domain`` also takes one of the
  ``free_domains[p]`` wholly free NVLink domains of its pool (conservatively, a whole
  domain even if the gang is smaller; other jobs may still use its remaining GPUs).
  Fragmentation inside nodes and domains is left to gang placement, which picks nodes
  for each PLACE.
* Quotas: ``quota[(tenant, accelerator)]`` is how many more GPUs of that accelerator the
  tenant may be given in this batch (absent: unlimited).
* Diversification caps (``cost.caps``): the batch is *atomic*. For every provider ``p``
  that receives ``X_p > 0`` capped GPUs (non-reserved pools), with ``T`` the batch's GPUs
  on all pools: ``G + X_p <= min_fleet_gpus`` or ``g_p + X_p <= share_p x (G + T)``.
  For a batch of one job this is exactly ``DiversificationCaps.allows``; every sequence
  of placements that ``allows`` accepts one by one satisfies it (a provider's share only
  falls as others grow; a placement let through under the threshold had ``G + X_p`` below
  it), so the greedy's feasible set lies inside the MILP's. Its placements may need the
  whole batch to respect a cap, so they are applied as a batch.
* Objective, lexicographic: first place as many units (GPUs; CPU-only jobs: nodes) as
  possible, then minimise ``sum cost[j,p] x[j,p]``, where ``cost`` is
  ``PoolCosts.ranked_usd_per_hour``: what the gang costs per hour on the pool, egress
  amortised over its expected duration (the ranking key times its GPUs). This is the
  textbook "penalty per unassigned unit larger than any placement cost" objective,
  solved exactly: a penalty that large (more than the cost of any whole assignment) in
  one objective drowns the cost in rounding, so the two criteria are solved in turn
  (stage 1 maximises placed units, stage 2 minimises cost with that many placed).
  Stage 1 is skipped when the greedy already places every job that has a feasible pool.
  Why the hourly cost and not the cost of the whole work: a batch decides what the fleet
  pays per hour from now on; a pool freed by a short job is reused by the next one, so
  over a busy horizon the money spent is the integral of that hourly burn. Minimising
  the whole work of one batch would hand paid capacity to its longest jobs, which the
  rest of the horizon does not reward; it would also not be what ``rank`` orders by.

Formulation, aggregated: jobs that are interchangeable form a *class* ``c`` of ``n_c``
jobs: the same candidate pools (after dropping those that could not take one of them
alone: capacity, a free domain, quota) with the same cost on each, the same units, GPUs
and NVLink flag and, only when quotas are given, the same tenant. A general-integer
``y[c,p]`` in ``[0, n_c]`` (tightened to what pool ``p`` could hold of the class alone)
per (class, candidate pool) counts the class's jobs sent there, at ``cost[c,p]`` each;
an integer ``s_c`` per class counts those left out; and, only for providers where the
threshold or a current excess over the share makes the cap a disjunction, one binary per
provider (big-M rows). Rows: one per class (``sum_p y[c,p] + s_c = n_c``), one per pool
(capacity, units per job), one per pool with NVLink jobs (domains, one per job), one per
quota and one or two per capped provider (GPUs per job). ``T`` needs no column: it is
``sum_c gpus_c (n_c - s_c)``, so the cap rows hold it through the ``s_c``. Stage 1
minimises the units left out, ``sum_c units_c s_c``; stage 2 keeps it at that. This is
exact, not a relaxation: the jobs of a class have the same coefficients in every row and
in the objective, so a per-job assignment (binary ``x[j,p]``) maps to ``y[c,p] = sum_{j
in c} x[j,p]`` of the same cost and feasibility, and every integer ``y`` maps back. Back
to jobs (documented choice): within a class, the jobs in batch order take the pools in
the class's candidate order, cheapest first, ``y[c,p]`` jobs each; any split would cost
the same, this one is deterministic and serves the jobs earlier in the queue first. A
1,000-job batch of the benchmark has about 200 classes and 13,000 columns instead of
about 46,000 binaries, and none of the symmetry between identical jobs that kept the
per-job model from proving optimality. Built directly as a sparse column-wise matrix and
solved with HiGHS (``highspy``), warm-started from the greedy solution (counted per
class and pool), stage 2 LP-guided (``_least_cost``: a MIP restricted to the columns of
least reduced cost for a near-optimal answer, then exact reduced-cost fixing before the
proof), so the answer never places fewer units than the greedy, nor at a higher cost
when it places as many, even when the time limit stops the search. HiGHS's answers are
checked against the rows before use (``_solution``, ``_mip``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import highspy
import numpy as np
import numpy.typing as npt

from intercloud.model import Topology, canonical_accelerator, canonical_provider
from intercloud.scheduler.cost.caps import DiversificationCaps
from intercloud.scheduler.cost.plan import CapTracker, GangClass, Plan, plan
from intercloud.scheduler.cost.pool_cost import PoolCosts
from intercloud.scheduler.requests import GangRequest

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]
ArrayLike = npt.ArrayLike
_FULL_SEARCH_MAX_COLS = 20_000  # columns left after reduced-cost fixing (_least_cost)
_RESTRICTED_COLS = 1_500  # first restricted MIP: columns of least reduced cost
_CHECK_NODES = 1  # the bound check: the root only


@dataclass(frozen=True, slots=True)
class FleetUsage:
    """What the fleet runs before the batch: ``total_gpus`` is ``G`` (every allocated GPU,
    reserved included), ``capped_gpus`` maps a provider to ``g_p`` (its allocated GPUs on
    non-reserved pools); see ``cost.caps``."""

    total_gpus: float = 0.0
    capped_gpus: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BatchAssignment:
    """The outcome of one batch. ``pool[i]`` is the pool of ``requests[i]`` (-1: left
    unassigned); ``usd_per_hour`` is what the placed gangs cost per hour (egress
    amortised as in ``PoolCosts.rank``); ``status`` is ``optimal``,
    ``time_limit`` (best found, ``gap`` open), ``greedy`` (by ``greedy_batch``) or the
    solver's words; ``gap`` is the relative MIP gap (0 for greedy: not a bound)."""

    pool: I64
    usd_per_hour: float
    placed_gpus: int
    unplaced_gpus: int
    status: str
    gap: float
    solve_s: float

    def by_job(self, requests: Sequence[GangRequest]) -> dict[int, int]:
        """``job_id -> pool`` for the placed requests."""
        return {
            r.job_id: int(p) for r, p in zip(requests, self.pool.tolist(), strict=True) if p >= 0
        }


@dataclass(slots=True)
class _Batch:
    """The jobs' candidates and everything both solvers read, built once."""

    costs: PoolCosts
    cand: list[I64]  # per job: candidate pools, cheapest first
    cost: list[F64]  # per job: USD per hour on each candidate
    units: I64  # per job: GPUs (CPU-only: nodes), for capacity and stage 1
    gpus: I64  # per job: GPUs for caps and quotas
    nvlink: Bool
    tenants: list[str]
    free: F64
    domains: F64
    quota: dict[tuple[str, int], float]
    caps: DiversificationCaps | None
    usage: FleetUsage


def _acc(name: str) -> str:
    return canonical_accelerator(name) or name.strip()


def _prepare(
    requests: Sequence[GangRequest],
    costs: PoolCosts,
    free_gpus: ArrayLike,
    free_domains: ArrayLike | None,
    now_s: float,
    caps: DiversificationCaps | None,
    usage: FleetUsage | None,
    quota: Mapping[tuple[str, str], float] | None,
    usable: Bool | None,
) -> _Batch:
    n = len(costs)
    free = np.asarray(free_gpus, np.float64).reshape(n).copy()
    domains = (
        np.full(n, np.inf)
        if free_domains is None
        else np.asarray(free_domains, np.float64).reshape(n).copy()
    )
    q: dict[tuple[str, int], float] = {}
    for (tenant, acc), limit in (quota or {}).items():
        code = costs.accelerator_code.get(_acc(acc))
        if code is not None:
            q[(tenant, code)] = float(limit)
    cand: list[I64] = []
    cost: list[F64] = []
    for r in requests:
        ids, c = costs.ranked_usd_per_hour(r, now_s)
        if usable is not None and ids.size:
            keep = usable[ids]
            ids, c = ids[keep], c[keep]
        cand.append(ids)
        cost.append(c)
    units = np.array(
        [max(r.nodes * r.gpus_per_node if r.accelerators else r.nodes, 0) for r in requests],
        np.int64,
    )
    gpus = np.array([r.gpus if r.accelerators else 0 for r in requests], np.int64)
    nvlink = np.array([r.topology == Topology.NVLINK_DOMAIN for r in requests], np.bool_)
    return _Batch(
        costs=costs,
        cand=cand,
        cost=cost,
        units=units,
        gpus=gpus,
        nvlink=nvlink,
        tenants=[r.tenant for r in requests],
        free=free,
        domains=domains,
        quota=q,
        caps=caps,
        usage=usage or FleetUsage(),
    )


def _usage_arrays(b: _Batch) -> tuple[float, F64, F64]:
    """``G``, ``g_p`` per provider code, share per provider code (>= 1: uncapped)."""
    pc = b.costs
    g = np.zeros(len(pc.providers))
    for name, v in b.usage.capped_gpus.items():
        code = pc.provider_code.get(canonical_provider(name))
        if code is not None:
            g[code] = float(v)
    share = np.array(
        [b.caps.share(p) if b.caps is not None else 1.0 for p in pc.providers], np.float64
    )
    return float(b.usage.total_gpus), g, share


def _result(b: _Batch, pool: I64, status: str, gap: float, t0: float) -> BatchAssignment:
    placed = pool >= 0
    total = 0.0
    for j in np.flatnonzero(placed).tolist():
        at = np.flatnonzero(b.cand[j] == pool[j])
        total += float(b.cost[j][at[0]])
    return BatchAssignment(
        pool=pool,
        usd_per_hour=total,
        placed_gpus=int(b.gpus[placed].sum()),
        unplaced_gpus=int(b.gpus[~placed].sum()),
        status=status,
        gap=gap,
        solve_s=time.perf_counter() - t0,
    )


# ---------------------------------------------------------------------- greedy
def greedy_batch(
    requests: Sequence[GangRequest],
    costs: PoolCosts,
    free_gpus: ArrayLike,
    free_domains: ArrayLike | None = None,
    *,
    now_s: float,
    caps: DiversificationCaps | None = None,
    usage: FleetUsage | None = None,
    quota: Mapping[tuple[str, str], float] | None = None,
    usable: Bool | None = None,
    cost_plan: bool = True,
) -> BatchAssignment:
    """The fast path's rule on the batch problem: with ``cost_plan`` (the core's default),
    the batch's cost plan first (``cost.plan``: classes of interchangeable jobs, the
    regret rule and a local search, on the batch's capacity and caps); then requests in
    the order given (queue order), each to its class's planned pools with count left,
    else to the first pool of ``PoolCosts.rank`` (the ordering the core's fast path
    uses), that still has the capacity, a free domain for an NVLink gang, the tenant's
    quota, and passes ``DiversificationCaps.allows`` against the fleet as placed so far
    (reserved pools exempt); otherwise the request stays unassigned.

    The core scheduler implements its own greedy inside its fast path; this one is the
    reference the benchmark and the tests compare with ``solve_batch`` on identical
    inputs (same arguments, same meaning).
    """
    t0 = time.perf_counter()
    b = _prepare(requests, costs, free_gpus, free_domains, now_s, caps, usage, quota, usable)
    pool = _greedy(b, cost_plan)
    return _result(b, pool, "greedy", 0.0, t0)


def _plan(b: _Batch) -> tuple[Plan, I64]:
    """The cost plan (``cost.plan``) of the batch over the MILP's classes of
    interchangeable jobs (``_classes``); and each job's class (-1: none)."""
    pc = b.costs
    pools, cost, members, job_class = _classes(b)
    classes = [
        GangClass(k, ids.tolist(), c.tolist(), int(b.units[js[0]]), int(b.gpus[js[0]]),
                  len(js), js[0], domain=bool(b.nvlink[js[0]]))
        for k, (ids, c, js) in enumerate(zip(pools, cost, members, strict=True))
    ]  # fmt: skip
    total, capped, _ = _usage_arrays(b)
    caps = CapTracker(
        b.caps, pc.providers, pc.provider.tolist(), pc.capped.tolist(), total, capped.tolist()
    )
    return plan(classes, b.free.tolist(), b.domains.tolist(), caps), job_class


def _greedy(b: _Batch, cost_plan: bool = True) -> I64:
    pc = b.costs
    free = b.free.copy()
    domains = b.domains.copy()
    quota = dict(b.quota)
    plan, job_class = _plan(b) if cost_plan else (Plan(), np.full(len(b.cand), -1))
    total, capped, _ = _usage_arrays(b)
    pool = np.full(len(b.cand), -1, np.int64)
    n_prov = len(pc.providers)
    for j, ids in enumerate(b.cand):
        if not ids.size:
            continue
        units = int(b.units[j])
        gpus = int(b.gpus[j])
        ok = free[ids] >= units
        if b.nvlink[j]:
            ok &= domains[ids] >= 1
        if quota:
            tenant = b.tenants[j]
            limits = np.array(
                [quota.get((tenant, a), np.inf) for a in range(len(pc.accelerators))] + [np.inf]
            )
            ok &= limits[pc.accelerator[ids]] >= gpus
        if b.caps is not None and gpus:
            allowed = np.fromiter(
                (
                    b.caps.allows(pc.providers[c], gpus, float(capped[c]), total)
                    for c in range(n_prov)
                ),
                np.bool_,
                n_prov,
            )
            ok &= allowed[pc.provider[ids]] | ~pc.capped[ids]
        hit = np.flatnonzero(ok)
        if not hit.size:
            continue
        p = int(ids[hit[0]])
        first = plan.first(int(job_class[j])) if plan else []
        if first:
            fits = set(ids[hit].tolist())
            p = next((q for q in first if q in fits), p)
        if plan:
            plan.placed(int(job_class[j]), p)
        pool[j] = p
        free[p] -= units
        if b.nvlink[j]:
            domains[p] -= 1
        a = int(pc.accelerator[p])
        key = (b.tenants[j], a)
        if key in quota:
            quota[key] -= gpus
        total += gpus
        if pc.capped[p]:
            capped[pc.provider[p]] += gpus
    return pool


# ---------------------------------------------------------------------- MILP
def solve_batch(
    requests: Sequence[GangRequest],
    costs: PoolCosts,
    free_gpus: ArrayLike,
    free_domains: ArrayLike | None = None,
    *,
    now_s: float,
    caps: DiversificationCaps | None = None,
    usage: FleetUsage | None = None,
    quota: Mapping[tuple[str, str], float] | None = None,
    usable: Bool | None = None,
    time_limit_s: float = 10.0,
    mip_rel_gap: float = 1e-4,
) -> BatchAssignment:
    """Assign ``requests`` to pools at minimum cost (module docstring: the formulation).

    ``free_gpus`` / ``free_domains``: per pool (index = pool id of ``costs``), the GPUs
    (CPU pools: nodes) and wholly free NVLink domains the batch may use (domains None:
    unlimited). ``usage``: the fleet before the batch, for the caps. ``quota``: GPUs of
    ``(tenant, accelerator)`` the batch may still give. ``usable``: pools allowed at all.
    Stops at ``time_limit_s`` or when the relative gap is at most ``mip_rel_gap``; the
    greedy solution is the warm start, so the result is never worse than it. Jobs of a
    class (module docstring) get its pools in batch order, cheapest pools first.
    """
    t0 = time.perf_counter()
    deadline = t0 + max(time_limit_s, 0.01)
    b = _prepare(requests, costs, free_gpus, free_domains, now_s, caps, usage, quota, usable)
    start = _greedy(b)
    m = _build(b)
    if m is None:
        return _result(b, start, "optimal", 0.0, t0)

    h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("random_seed", 0)
    h.passModel(
        m.n_cols,
        m.n_rows,
        int(m.value.size),
        1,  # MatrixFormat.kColwise
        1,  # ObjSense.kMinimize
        0.0,
        m.cost,
        m.col_lower,
        m.col_upper,
        m.row_lower,
        m.row_upper,
        m.start,
        m.index,
        m.value,
        m.integrality.astype(np.int32),
    )
    n_class = m.class_count.size
    ss = np.arange(m.n_y, m.n_y + n_class, dtype=np.int32)  # the s columns
    left_units = m.class_units.astype(np.float64)  # per s column
    x0 = _warm_start(b, m, start)
    left = float(left_units @ x0[ss])
    optimal = True
    # Stage 1, only when the greedy left out a job that has a candidate column: the fewest
    # units left out (half the time). Otherwise the greedy's count is the bound.
    if left > 0.5:
        ys = np.arange(m.n_y + n_class, dtype=np.int32)
        stage1 = np.zeros(m.n_cols)
        stage1[ss] = left_units
        h.changeColsCost(ys.size, ys, stage1[ys])
        h.setOptionValue("time_limit", max((deadline - time.perf_counter()) / 2, 0.01))
        h.setOptionValue("mip_rel_gap", 0.0)
        x1, trusted = _mip(h, m, x0, stage1, np.inf)
        optimal = trusted and h.getModelStatus() == highspy.HighsModelStatus.kOptimal
        if x1 is not None and float(left_units @ x1[ss]) < left - 0.5:
            x0, left = x1, float(left_units @ x1[ss])
        h.changeColsCost(ys.size, ys, m.cost[ys])
    # Stage 2: the least cost among assignments that leave out no more units.
    h.addRow(-np.inf, left + 0.5, n_class, ss, left_units)
    best, status, gap = _least_cost(h, m, x0, left + 0.5, deadline, mip_rel_gap)
    optimal &= status == "optimal"
    pool = _disaggregate(m, best, len(requests))
    if _worse(b, pool, start):  # a safeguard: the greedy is the warm start
        pool = start
    word = "optimal" if optimal else "time_limit"
    return _result(b, pool, word, gap, t0)


def _least_cost(
    h: highspy.Highs, m: _Model, warm: F64, left: float, deadline: float, rel_gap: float
) -> tuple[F64, str, float]:
    """Stage 2, LP-guided. The LP relaxation gives a bound ``L`` and the reduced cost ``d``
    of each ``y``. Reduced-cost fixing, exact: a column at 0 in the LP with ``L + d >
    best`` would make any solution that uses it cost more than the best known, so it is
    fixed at 0 (more of them as ``best`` improves). Then rounds: the MIP restricted to
    the columns the LP finds cheapest (its support, the ``size`` of least ``d``,
    ``best``'s) gives a near-optimal answer fast (half the time left); after the first,
    the root of the MIP over every column not fixed (``_CHECK_NODES``) gives a better
    bound than ``L`` or the proof; ``size`` doubles until the answer is within the gap
    of the bound or the restricted MIP would be the whole one. Last, the MIP over every
    column not fixed, with the time left. ``left``: the most units left out (the row
    stage 1 added). Returns (solution, status, relative gap)."""
    cols = np.arange(m.n_cols, dtype=np.int32)
    h.changeColsIntegrality(m.n_cols, cols, np.zeros(m.n_cols, np.uint8))
    h.setOptionValue("time_limit", max(deadline - time.perf_counter(), 0.01))
    lp = _run(h, None, m.n_cols)
    # a bound only when solved: a primal solution cut short is no bound
    lp_solved = lp is not None and h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    lp_bound = float(h.getInfo().objective_function_value) if lp_solved else -np.inf
    d = np.asarray(h.getSolution().col_dual, np.float64)[: m.n_y] if lp_solved else None
    h.changeColsIntegrality(m.n_cols, cols, m.integrality)
    h.setOptionValue("mip_rel_gap", rel_gap)
    best = warm
    best_cost = float(m.cost @ warm)
    bound = lp_bound  # on every solution, not only those of the columns left
    ny = m.n_y
    fixed = np.zeros(ny, np.bool_)
    fixed_bound = np.inf  # what any solution using a fixed column costs at least

    def gap() -> float:
        return max(best_cost - bound, 0.0) / max(abs(best_cost), 1e-12)

    def done() -> bool:
        return best_cost - bound <= rel_gap * abs(best_cost) + 1e-9

    def solve(time_share: float, restricted: bool) -> bool:
        """The MIP as it stands, from ``best``; whether HiGHS proved it optimal. Unless
        ``restricted`` (columns held at 0 that are not fixed), its bound is one on every
        solution once the fixed columns' is taken into account."""
        nonlocal best, best_cost, bound
        h.setOptionValue("time_limit", max((deadline - time.perf_counter()) * time_share, 0.01))
        found, trusted = _mip(h, m, best, m.cost, left)
        if found is not None and float(m.cost @ found) < best_cost:
            best, best_cost = found, float(m.cost @ found)
        if restricted or not trusted:
            return False
        bound = max(bound, min(float(h.getInfo().mip_dual_bound), fixed_bound))
        return h.getModelStatus() == highspy.HighsModelStatus.kOptimal

    def fix() -> None:
        nonlocal fixed_bound
        if lp is None or d is None:
            return
        slack = best_cost - lp_bound + 1e-7 * max(abs(best_cost), 1.0)
        new = np.flatnonzero(~fixed & (lp[:ny] <= 1e-9) & (d > slack)).astype(np.int32)
        if new.size:
            h.changeColsBounds(new.size, new, m.col_lower[new], np.zeros(new.size))
            fixed[new] = True
            fixed_bound = min(fixed_bound, lp_bound + float(d[new].min()))

    if lp is not None and d is not None:
        support = lp[:ny] > 1e-9
        by_d = np.argsort(d, kind="stable")
        size = _RESTRICTED_COLS
        checked = False
        while not done() and deadline - time.perf_counter() > 0.05:
            fix()
            keep = support | (best[:ny] > 0.5) | fixed
            keep[by_d[:size]] = True
            out = np.flatnonzero(~keep).astype(np.int32)
            if not out.size:
                break  # the restricted MIP would be the whole one
            h.changeColsBounds(out.size, out, m.col_lower[out], np.zeros(out.size))
            solve(0.5, restricted=True)
            h.changeColsBounds(out.size, out, m.col_lower[out], m.col_upper[out])
            if not checked and not done():
                checked = True
                fix()
                _check_options(h, True)
                proven = solve(0.5, restricted=False)
                _check_options(h, False)
                if proven:
                    return best, "optimal", gap()
            size *= 2
    if done():
        return best, "optimal", gap()
    fix()
    # HiGHS overruns its time limit by minutes on large models (presolve, sub-MIPs), so
    # the full search runs only on models it can get through: above that, the answer is
    # the best found, with the best bound known.
    room = deadline - time.perf_counter() > 0.05
    if room and m.n_cols - fixed.sum() <= _FULL_SEARCH_MAX_COLS and solve(1.0, restricted=False):
        return best, "optimal", gap()
    return best, "optimal" if done() else "time_limit", gap()


def _mip(
    h: highspy.Highs, m: _Model, warm: F64 | None, cost: F64, left: float
) -> tuple[F64 | None, bool]:
    """The MIP as it stands, from ``warm``: (the best answer, checked by ``_solution``;
    whether HiGHS's status and bounds hold). HiGHS 1.16 can lose the objective offset
    of its presolve when given a start, value the start below its cost, and call it
    optimal in error; its objective then differs from its answer's cost. It is then run
    again without the start."""
    best: F64 | None = None
    for start in (warm, None) if warm is not None else (None,):
        if start is None:
            h.clearSolver()  # else the last answer is the start
        found = _run(h, start, m.n_cols)
        x = _solution(m, found, left)
        if x is not None and (best is None or float(cost @ x) < float(cost @ best)):
            best = x
        if found is None:  # no answer at all: the status says why
            return best, True
        if x is not None:
            obj = float(h.getInfo().objective_function_value)
            if abs(obj - float(cost @ x)) <= 1e-6 * max(1.0, abs(obj)):
                return best, True
    return best, False


def _solution(m: _Model, x: F64 | None, left: float) -> F64 | None:
    """``x`` with its integer columns rounded, if that is a solution of the model with at
    most ``left`` units left out; else None. HiGHS's answers are checked, not trusted."""
    if x is None or x.size != m.n_cols:
        return None
    x = x.copy()
    ints = m.integrality > 0
    if (np.abs(x[ints] - np.rint(x[ints])) > 1e-6).any():
        return None
    x[ints] = np.rint(x[ints])
    if ((x < m.col_lower - 1e-9) | (x > m.col_upper + 1e-9)).any():
        return None
    act = np.zeros(m.n_rows)
    np.add.at(act, m.index, m.value * np.repeat(x, np.diff(m.start)))
    tol = 1e-6 * (1.0 + np.abs(act))
    if ((act < m.row_lower - tol) | (act > m.row_upper + tol)).any():
        return None
    s = x[m.n_y : m.n_y + m.class_count.size]
    return x if float(m.class_units @ s) <= left + 1e-6 else None


def _check_options(h: highspy.Highs, on: bool) -> None:
    """A root-only MIP for its bound: no heuristics (``on``), or back to the defaults."""
    h.setOptionValue("mip_max_nodes", _CHECK_NODES if on else 2**31 - 1)
    h.setOptionValue("mip_heuristic_effort", 0.0 if on else 0.05)
    for name in ("rins", "rens", "root_reduced_cost", "feasibility_jump"):
        h.setOptionValue(f"mip_heuristic_run_{name}", not on)


def _run(h: highspy.Highs, warm: F64 | None, n_cols: int) -> F64 | None:
    """Solve (from ``warm`` if given); the best solution found (None: none reported)."""
    if warm is not None:
        sol = highspy.HighsSolution()
        sol.col_value = warm
        sol.value_valid = True
        h.setSolution(sol)
    h.run()
    if h.getInfo().primal_solution_status != 2:
        return None
    values = np.asarray(h.getSolution().col_value, np.float64)
    return values if values.size == n_cols else None


@dataclass(slots=True)
class _Model:
    """The aggregated MILP in HiGHS's column-wise form, and what its columns stand for.

    Columns: the ``n_y`` columns ``y`` (those of a class side by side, its candidate pools
    cheapest first), one ``s`` per class (its jobs left out), then the cap binaries.
    Class ``k`` holds the jobs ``class_jobs[k]`` (batch order)."""

    col_class: I64  # per y column: the class
    col_pool: I64  # per y column: the pool
    n_y: int
    class_jobs: list[I64]  # per class: its jobs (indices into the batch), batch order
    class_count: I64  # per class: how many jobs
    class_units: I64  # per class: units of one job (capacity, stage 1)
    class_gpus: I64  # per class: GPUs of one job (quotas, caps)
    job_class: I64  # per job: its class (-1: no candidate column)
    n_cols: int
    n_rows: int
    cost: F64
    col_lower: F64
    col_upper: F64
    row_lower: F64
    row_upper: F64
    start: npt.NDArray[np.int32]
    index: npt.NDArray[np.int32]
    value: F64
    integrality: npt.NDArray[np.uint8]
    binaries: list[tuple[int, I64, float, float]]  # (w column, y columns, share, rhs)


class _Rows:
    """Sparse rows collected as coordinates, turned column-wise at the end."""

    def __init__(self) -> None:
        self.rows: list[I64] = []
        self.cols: list[I64] = []
        self.vals: list[F64] = []
        self.lo: list[F64] = []
        self.hi: list[F64] = []
        self.n = 0

    def add(self, r: I64, c: I64, v: F64, upper: F64, lower: F64 | None = None) -> int:
        """Rows ``lower <= sum v x <= upper``, ``r`` local row numbers; returns the first."""
        first = self.n
        self.rows.append(r + first)
        self.cols.append(c)
        self.vals.append(v)
        self.hi.append(upper)
        self.lo.append(np.full(upper.size, -np.inf) if lower is None else lower)
        self.n += upper.size
        return first

    def one(self, c: I64, v: F64, upper: float, lower: float = -np.inf) -> int:
        return self.add(np.zeros(c.size, np.int64), c, v, np.array([upper]), np.array([lower]))


_ClassKey = tuple[bytes, bytes, int, int, bool, str | None]


def _classes(b: _Batch) -> tuple[list[I64], list[F64], list[list[int]], I64]:
    """The classes of interchangeable jobs: per class its candidate pools (those that
    could take one of its jobs alone, cheapest first), their costs and its jobs (batch
    order); and per job its class (-1: no candidate). Jobs share a class when they have
    the same pools and costs, units, GPUs, NVLink flag and, with quotas, tenant."""
    pc = b.costs
    n_acc = len(pc.accelerators)
    index: dict[_ClassKey, int] = {}
    pools: list[I64] = []
    cost: list[F64] = []
    members: list[list[int]] = []
    job_class = np.full(len(b.cand), -1, np.int64)
    for j, (ids, c) in enumerate(zip(b.cand, b.cost, strict=True)):
        if not ids.size:
            continue
        keep = b.free[ids] >= b.units[j]
        if b.nvlink[j]:
            keep &= b.domains[ids] >= 1
        if b.quota:
            limits = np.array(
                [b.quota.get((b.tenants[j], a), np.inf) for a in range(n_acc)] + [np.inf]
            )
            keep &= limits[pc.accelerator[ids]] >= b.gpus[j]
        if not keep.any():
            continue
        ids, c = ids[keep], np.ascontiguousarray(c[keep], np.float64)
        key: _ClassKey = (
            np.ascontiguousarray(ids, np.int64).tobytes(),
            c.tobytes(),
            int(b.units[j]),
            int(b.gpus[j]),
            bool(b.nvlink[j]),
            b.tenants[j] if b.quota else None,
        )
        k = index.setdefault(key, len(members))
        if k == len(members):
            pools.append(ids)
            cost.append(c)
            members.append([])
        members[k].append(j)
        job_class[j] = k
    return pools, cost, members, job_class


def _build(b: _Batch) -> _Model | None:
    """The aggregated MILP of the module docstring (None: no job has a feasible pool)."""
    pc = b.costs
    pools, cost, members, job_class = _classes(b)
    if not members:
        return None
    first = np.array([js[0] for js in members], np.int64)  # one job stands for its class
    class_count = np.array([len(js) for js in members], np.int64)
    class_units = b.units[first]
    class_gpus = b.gpus[first]
    sizes = np.array([p.size for p in pools], np.int64)
    col_class = np.repeat(np.arange(len(members), dtype=np.int64), sizes)
    col_pool = np.concatenate(pools)
    col_cost = np.concatenate(cost)
    ny = col_class.size
    units = class_units[col_class].astype(np.float64)
    gpus = class_gpus[col_class].astype(np.float64)
    nv_col = b.nvlink[first][col_class]
    ys = np.arange(ny, dtype=np.int64)
    # y <= n_c, tightened by what the pool could take of the class alone (implied by the
    # capacity and domain rows for an integer y: a bound the solver need not derive)
    upper = class_count[col_class].astype(np.float64)
    pos = units > 0
    upper[pos] = np.minimum(upper[pos], np.floor(b.free[col_pool[pos]] / units[pos] + 1e-9))
    upper[nv_col] = np.minimum(upper[nv_col], np.floor(b.domains[col_pool[nv_col]] + 1e-9))

    n_class = len(members)
    counts = class_count.astype(np.float64)
    rows = _Rows()  # per class: sum_p y[c,p] + s_c = n_c
    rows.add(
        np.concatenate([col_class, np.arange(n_class)]),
        np.concatenate([ys, ny + np.arange(n_class)]),
        np.ones(ny + n_class),
        counts,
        counts,
    )
    used, pool_row = np.unique(col_pool, return_inverse=True)
    rows.add(pool_row.reshape(-1).astype(np.int64), ys, units, b.free[used])
    nv = np.flatnonzero(nv_col)
    if nv.size:
        dpools, drow = np.unique(col_pool[nv], return_inverse=True)
        drow = drow.reshape(-1)
        finite = np.isfinite(b.domains[dpools])
        sel = finite[drow]
        if sel.any():
            remap = (np.cumsum(finite) - 1).astype(np.int64)
            rows.add(remap[drow[sel]], nv[sel], np.ones(int(sel.sum())), b.domains[dpools[finite]])
    if b.quota:
        keys = {k: i for i, k in enumerate(b.quota)}
        tenant = [b.tenants[j] for j in first.tolist()]
        qrow = np.array(
            [
                keys.get((tenant[k], a), -1)
                for k, a in zip(col_class.tolist(), pc.accelerator[col_pool].tolist(), strict=True)
            ],
            np.int64,
        )
        sel = np.flatnonzero(qrow >= 0)
        if sel.size:
            rows.add(qrow[sel], sel, gpus[sel], np.array(list(b.quota.values()), np.float64))

    extra_upper: list[float] = counts.tolist()  # the s columns
    extra_int: list[int] = [1] * n_class
    binaries: list[tuple[int, I64, float, float]] = []
    # T, the batch's GPUs on every pool, is sum_c gpus_c (n_c - s_c): a cap row
    # X_p - s T <= rhs is X_p + s sum_c gpus_c s_c <= rhs + s sum_c gpus_c n_c. (A column T
    # and a row over every y tying it cost the same, but HiGHS's bound propagation can
    # stall for minutes on that dense row, past its time limit.)
    s_cols = ny + np.arange(n_class, dtype=np.int64)
    s_gpus = class_gpus.astype(np.float64)
    all_gpus = float(class_gpus @ class_count)
    for sel, s, rhs, big, u_p, low in _cap_rows(b, col_pool, gpus, col_class, s_gpus * counts):
        cs = np.concatenate([sel, s_cols])
        vs = np.concatenate([gpus[sel], s * s_gpus])
        if big is None:
            rows.one(cs, vs, rhs + s * all_gpus)
            continue
        w = ny + len(extra_upper)
        extra_upper.append(1.0)
        extra_int.append(1)
        rows.one(np.append(cs, w), np.append(vs, -big), rhs + s * all_gpus)
        rows.one(np.append(sel, w), np.append(gpus[sel], u_p - low), u_p)
        binaries.append((w, sel, s, rhs))

    n_cols = ny + len(extra_upper)
    r = np.concatenate(rows.rows)
    c = np.concatenate(rows.cols)
    v = np.concatenate(rows.vals)
    order = np.lexsort((r, c))
    c = c[order]
    return _Model(
        col_class=col_class,
        col_pool=col_pool,
        n_y=ny,
        class_jobs=[np.array(js, np.int64) for js in members],
        class_count=class_count,
        class_units=class_units,
        class_gpus=class_gpus,
        job_class=job_class,
        n_cols=n_cols,
        n_rows=rows.n,
        cost=np.concatenate([col_cost, np.zeros(len(extra_upper))]),
        col_lower=np.zeros(n_cols),
        col_upper=np.concatenate([upper, np.array(extra_upper, np.float64)]),
        row_lower=np.concatenate(rows.lo),
        row_upper=np.concatenate(rows.hi),
        start=np.searchsorted(c, np.arange(n_cols + 1)).astype(np.int32),
        index=r[order].astype(np.int32),
        value=v[order].astype(np.float64),
        integrality=np.concatenate([np.ones(ny, np.uint8), np.array(extra_int, np.uint8)]),
        binaries=binaries,
    )


_CapRow = tuple[I64, float, float, float | None, float, float]


def _cap_rows(
    b: _Batch, col_pool: I64, gpus: F64, col_class: I64, class_gpus: F64
) -> list[_CapRow]:
    """Per capped provider: (its capped y columns, share, rhs, big-M or None, U_p, L).

    ``gpus``: per column, the GPUs of one job; ``class_gpus``: per class, the GPUs of all
    its jobs. Plain row ``X_p - s T <= s G - g_p`` when it holds at ``X_p = 0`` anyway
    and the threshold cannot apply (``G >= min_fleet``). Otherwise a binary ``w`` relaxes
    it (``X_p - s T - M w <= s G - g_p``) and, when set, limits ``X_p <= L`` (row
    ``X_p + (U_p - L) w <= U_p``) with ``L = max(min_fleet - G, 0)``: the threshold
    branch ``G + X_p <= min_fleet``, which includes ``X_p = 0``. ``U_p`` bounds ``X_p``
    (the free GPUs of its pools, and the GPUs of the classes that may go there).
    Providers the threshold always lets through (``G + U_p <= min_fleet``) get no row.
    """
    if b.caps is None:
        return []
    pc = b.costs
    total, capped, share = _usage_arrays(b)
    prov_col = pc.provider[col_pool]
    cap_col = pc.capped[col_pool] & (gpus > 0)
    threshold = float(b.caps.min_fleet_gpus)
    out: list[_CapRow] = []
    for code in range(len(pc.providers)):
        s = float(share[code])
        if s >= 1.0:
            continue
        sel = np.flatnonzero(cap_col & (prov_col == code))
        if not sel.size:
            continue
        u_p = min(
            float(b.free[np.unique(col_pool[sel])].sum()),
            float(class_gpus[np.unique(col_class[sel])].sum()),
        )
        if total + u_p <= threshold:
            continue
        rhs = s * total - float(capped[code])
        low = min(max(threshold - total, 0.0), u_p)
        if rhs >= 0 and low <= 0:
            out.append((sel, s, rhs, None, u_p, 0.0))
        else:
            out.append((sel, s, rhs, max((1.0 - s) * u_p - rhs, 0.0), u_p, low))
    return out


def _warm_start(b: _Batch, m: _Model, pool: I64) -> F64:
    """The greedy assignment as a column vector: per (class, pool) how many of the
    class's jobs it placed there, per class how many it left out, the cap binaries."""
    x = np.zeros(m.n_cols)
    ny = m.n_y
    n = b.free.size
    key = m.col_class * n + m.col_pool
    order = np.argsort(key, kind="stable")
    jobs = np.flatnonzero((pool >= 0) & (m.job_class >= 0))
    want = m.job_class[jobs] * n + pool[jobs]
    at = np.minimum(np.searchsorted(key[order], want), ny - 1)
    hit = key[order][at] == want  # always, as the greedy only uses candidate columns
    np.add.at(x, order[at[hit]], 1.0)
    n_class = m.class_count.size
    placed = np.bincount(m.col_class, weights=x[:ny], minlength=n_class)
    x[ny : ny + n_class] = m.class_count - placed
    if m.binaries:
        gpus = m.class_gpus[m.col_class].astype(np.float64)
        t = float(gpus @ x[:ny])  # T
        for w, sel, s, rhs in m.binaries:
            x[w] = float(float(gpus[sel] @ x[sel]) - s * t > rhs + 1e-9)
    return x


def _disaggregate(m: _Model, y: F64, n_jobs: int) -> I64:
    """Per job its pool (-1: none) from the class counts ``y``: within a class, the jobs
    in batch order take the pools in candidate order (cheapest first), ``y[c,p]`` each.
    The jobs of a class are interchangeable, so any split costs the same and fits the
    same rows; this one is deterministic and serves the earlier jobs first."""
    pool = np.full(n_jobs, -1, np.int64)
    counts = np.rint(np.maximum(y[: m.n_y], 0.0)).astype(np.int64)
    filled = np.zeros(len(m.class_jobs), np.int64)
    for i in np.flatnonzero(counts).tolist():
        k = int(m.col_class[i])
        s = int(filled[k])
        take = m.class_jobs[k][s : s + int(counts[i])]
        pool[take] = m.col_pool[i]
        filled[k] = s + take.size
    return pool


def _worse(b: _Batch, pool: I64, than: I64) -> bool:
    """Whether ``pool`` places fewer units than ``than``, or as many at a higher cost."""

    def score(p: I64) -> tuple[int, float]:
        placed = np.flatnonzero(p >= 0)
        usd = 0.0
        for j in placed.tolist():
            usd += float(b.cost[j][np.flatnonzero(b.cand[j] == p[j])[0]])
        return int(b.units[placed].sum()), usd

    (u1, c1), (u0, c0) = score(pool), score(than)
    return u1 < u0 or (u1 == u0 and c1 > c0 + 1e-9 * max(abs(c0), 1.0))
