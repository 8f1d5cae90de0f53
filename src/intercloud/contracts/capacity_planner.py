"""Long-horizon capacity planner: the cost-minimal mix of pricing options that meets a
monthly GPU-hour forecast, solved with HiGHS.

Model (P providers, A accelerator types, T months; H_t hours in month t):

* On-demand GPU-hours at list price, or under a committed-spend tier of that provider
  (``committed``: list price less the tier's discount; choosing the tier obliges the
  plan to pay at least its ``commit_usd`` over the horizon: any shortfall is paid).
* Spot GPU-hours: each bought hour yields ``availability`` useful hours (the rest is lost
  to preemptions and restarts); spot serves training demand only, never inference.
* 1- and 3-year reservations started in any month: paid for their whole term (also past
  the horizon's end) whether used or not; active ones give H_t GPU-hours per GPU.
* Capacity Blocks: whole instances held for a month (a window inside the 1..182-day
  rule), paid upfront, each yielding ``gpus_per_instance`` x (H_t - 0.5) GPU-hours (the
  instances stop 30 minutes before the block ends); at most 256 instances across blocks
  per provider at once (any count up to 256 is 4 or fewer blocks of at most 64).
* Availability limits and ramps: GPUs in use per provider and type (hours / H_t for
  on-demand and spot, active reservations, block instances) and per provider in all.
* Demand: per type and month, the GPU-hours supplied by all providers cover training
  plus inference; spot's useful hours cover at most the training part.
* Diversification: each provider supplies at most ``max_share`` of the month's GPU-hours;
  the primary partner at least ``primary_min_share``.

It is an LP, except where integer choices matter: the number of Capacity Block instances
(integer) and which committed-spend tier a provider signs (binary, at most one). Without
Capacity Blocks or tiers it is solved as a pure LP. With them, the default is relax and
round: the LP relaxation (interior point) gives a lower bound, block counts are rounded
down and each provider's tier is picked from its relaxed spend, and the rest is
re-optimised (dual simplex from the relaxed basis); the plan carries its gap to the bound.
Small models (few integer columns) also get branch and bound; ``exact=True`` always does
(minutes at 84 x 4 x 10, where rounding is within 0.01 % of it). The constraint matrix
is built from numpy index arrays in coordinate form and handed to HiGHS column-wise in
one call.

``plan_capacity`` solves the plan and its comparisons: without caps (what the caps cost),
all on-demand at list price (same caps and limits), and each provider alone.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

import highspy
import numpy as np
import numpy.typing as npt
from highspy._core import _Highs

from intercloud.contracts.planner_input import F64, PlanningProblem, month_add, month_hours

I64 = npt.NDArray[np.int64]

#: Capacity Block instances across blocks per provider at once (AWS EC2).
CB_MAX_INSTANCES = 256
#: Hours of a Capacity Block month that its instances cannot use (the 30-minute early end).
CB_LOST_HOURS = 0.5
#: Unit of the commitment rows (USD): millions keep their coefficients near the others.
USD_UNIT = 1e6
#: Models with at most this many integer columns get branch and bound after rounding
#: (at most ``EXACT_AUTO_SECONDS``) when the rounded plan is not provably optimal.
EXACT_AUTO_MAX_INTEGERS = 64
EXACT_AUTO_SECONDS = 5.0
#: Relative MIP gap accepted (0.01 %): far below any forecast's error.
MIP_REL_GAP = 1e-4


class Option(StrEnum):
    """Pricing options a solve may use."""

    ON_DEMAND = "on_demand"
    COMMITTED = "committed"
    SPOT = "spot"
    RESERVED_1Y = "reserved_1y"
    RESERVED_3Y = "reserved_3y"
    CAPACITY_BLOCK = "capacity_block"


ALL_OPTIONS = frozenset(Option)


class Infeasibility(StrEnum):
    """Why no plan exists."""

    DEMAND_UNMET = "demand_unmet"
    CAPS = "caps"


INFEASIBILITY_TEXT: dict[Infeasibility, str] = {
    Infeasibility.DEMAND_UNMET: "no mix of the offers meets the demand",
    Infeasibility.CAPS: (
        "the diversification policy cannot be met with the offers' limits; under it"
    ),
}


@dataclass(frozen=True)
class Shortfall:
    """``gpu_hours`` of ``accelerator`` demand in ``month`` that no mix can supply."""

    accelerator: str
    month: str  # YYYY-MM
    gpu_hours: float


class PlanInfeasible(ValueError):
    """No plan exists; ``reason`` says why, ``shortfalls`` where demand falls short."""

    def __init__(self, reason: Infeasibility, shortfalls: tuple[Shortfall, ...] = ()) -> None:
        self.reason = reason
        self.shortfalls = shortfalls
        text = INFEASIBILITY_TEXT[reason]
        if shortfalls:
            shown = ", ".join(
                f"{s.accelerator} {s.month} short {s.gpu_hours:,.0f} GPU-hours"
                for s in shortfalls[:5]
            )
            more = f" and {len(shortfalls) - 5} more" if len(shortfalls) > 5 else ""
            text += f": {shown}{more}"
        super().__init__(text)


@dataclass(frozen=True)
class Plan:
    """One solved plan. Arrays are (P, A, T) unless stated; hours are GPU-hours.

    ``reserved_*_new``: GPUs whose reservation starts that month; ``*_active``: GPUs
    reserved in that month. ``capacity_block_instances``: instances held that month.
    ``tier[p]``: index of the signed commit tier, -1 for none. ``cost_usd`` per provider
    and option sums to ``total_usd``; ``commit_shortfall_usd`` (P,) is the part of a
    signed tier's commitment not covered by committed spend. ``lower_bound_usd``: no plan
    costs less (``gap``: how far this one may be from the optimum); ``mip``: integer
    choices were made (a tier, or Capacity Block counts rounded).
    """

    on_demand_hours: F64
    committed_hours: F64
    spot_hours: F64
    reserved_1y_new: F64
    reserved_3y_new: F64
    reserved_1y_active: F64
    reserved_3y_active: F64
    capacity_block_instances: F64
    supplied_hours: F64  # (P, A, T) useful GPU-hours supplied
    tier: tuple[int, ...]
    commit_shortfall_usd: F64
    cost_usd: dict[str, dict[Option, float]]
    total_usd: float
    lower_bound_usd: float
    solve_s: float
    mip: bool

    @property
    def gap(self) -> float:
        """Relative distance of ``total_usd`` from the proven lower bound."""
        return max(0.0, self.total_usd - self.lower_bound_usd) / max(abs(self.total_usd), 1.0)

    def provider_share(self) -> F64:
        """(P, T) each provider's share of the GPU-hours supplied in each month."""
        per = self.supplied_hours.sum(axis=1)
        tot = per.sum(axis=0)
        out: F64 = np.divide(per, tot, out=np.zeros_like(per), where=tot > 0)
        return out


@dataclass(frozen=True)
class PlanReport:
    """The plan and what it is compared with (totals in USD; None: infeasible)."""

    problem: PlanningProblem
    plan: Plan
    uncapped_usd: float | None
    all_on_demand_usd: float | None
    single_provider_usd: dict[str, float | None] = field(default_factory=dict)
    solve_s: float = 0.0

    @property
    def caps_cost_usd(self) -> float | None:
        """What the diversification policy costs: the plan less the plan without caps."""
        return None if self.uncapped_usd is None else self.plan.total_usd - self.uncapped_usd

    @property
    def best_single_provider(self) -> tuple[str, float] | None:
        found = [(c, p) for p, c in self.single_provider_usd.items() if c is not None]
        return None if not found else (min(found)[1], min(found)[0])


class _Builder:
    """Columns and coordinate-form rows of one LP/MILP."""

    def __init__(self) -> None:
        self.n_cols = 0
        self.n_rows = 0
        self.cost: list[F64] = []
        self.hi: list[F64] = []
        self.integer: list[npt.NDArray[np.int32]] = []
        self.row_lo: list[F64] = []
        self.row_hi: list[F64] = []
        self.r: list[I64] = []
        self.c: list[I64] = []
        self.v: list[F64] = []

    def cols(
        self, shape: tuple[int, ...], cost: F64 | float, hi: F64 | float, integer: bool = False
    ) -> I64:
        n = int(np.prod(shape))
        idx = np.arange(self.n_cols, self.n_cols + n, dtype=np.int64).reshape(shape)
        self.n_cols += n
        self.cost.append(np.broadcast_to(np.asarray(cost, dtype=np.float64), shape).ravel())
        self.hi.append(np.broadcast_to(np.asarray(hi, dtype=np.float64), shape).ravel())
        self.integer.append(np.full(n, 1 if integer else 0, dtype=np.int32))
        return idx

    def rows(self, shape: tuple[int, ...], lo: F64 | float, hi: F64 | float) -> I64:
        n = int(np.prod(shape))
        idx = np.arange(self.n_rows, self.n_rows + n, dtype=np.int64).reshape(shape)
        self.n_rows += n
        self.row_lo.append(np.broadcast_to(np.asarray(lo, dtype=np.float64), shape).ravel())
        self.row_hi.append(np.broadcast_to(np.asarray(hi, dtype=np.float64), shape).ravel())
        return idx

    def coef(self, rows: I64, cols: I64, vals: F64 | float) -> None:
        r, c, v = np.broadcast_arrays(rows, cols, np.asarray(vals, dtype=np.float64))
        self.r.append(r.ravel())
        self.c.append(c.ravel())
        self.v.append(v.ravel())

    def solve(self, exact: bool, fix: Callable[[F64], tuple[I64, F64]]) -> _Solution | None:
        """Solve; None when infeasible.

        ``exact``: HiGHS branch-and-bound on every integer column. Otherwise the model is
        first solved with every integer column continuous (interior point: a lower bound
        on the optimum), then ``fix(relaxed columns)`` names integer columns and whole
        values for them (``fix`` must round the rest to whole numbers too), the continuous
        rest is re-optimised from the relaxed basis (dual simplex), and ``gap`` is the
        result's distance from the bound. If rounding down leaves no feasible plan, the
        general-integer columns are rounded up instead. A model with few integer columns
        (``EXACT_AUTO_MAX_INTEGERS``) whose rounded plan is not provably optimal then gets
        branch and bound as well, keeping the better plan.
        """
        r = np.concatenate(self.r)
        c = np.concatenate(self.c)
        v = np.concatenate(self.v)
        keep = v != 0
        r, c, v = r[keep], c[keep], v[keep]
        order = np.lexsort((r, c))
        r, c, v = r[order], c[order], v[order]
        # HiGHS refuses repeated (row, column) entries: sum them.
        first = np.ones(r.size, dtype=bool)
        first[1:] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
        if not first.all():
            at = np.flatnonzero(first)
            r, c, v = r[at], c[at], np.add.reduceat(v, at)
        start = np.zeros(self.n_cols + 1, dtype=np.int32)
        np.cumsum(np.bincount(c, minlength=self.n_cols), out=start[1:])
        hi = np.concatenate(self.hi)
        integer = np.concatenate(self.integer).astype(bool) & (hi > 0)
        h = _Highs()  # the core class: the wrapper's constructor prints a banner on stdout
        h.setOptionValue("output_flag", False)
        h.setOptionValue("random_seed", 0)
        h.setOptionValue("mip_rel_gap", MIP_REL_GAP)
        if not exact:
            h.setOptionValue("solver", "ipm")
        integrality = (integer if exact else np.zeros(self.n_cols, dtype=bool)).astype(np.int32)
        h.passModel(
            self.n_cols,
            self.n_rows,
            int(v.size),
            1,  # column-wise
            1,  # minimise
            0.0,
            np.concatenate(self.cost),
            np.zeros(self.n_cols),
            hi,
            np.concatenate(self.row_lo),
            np.concatenate(self.row_hi),
            start,
            r.astype(np.int32),
            v,
            integrality,
        )
        if not _run(h):
            return None
        col = np.asarray(h.getSolution().col_value, dtype=np.float64)
        info = h.getInfo()
        mip = bool(integer.any())
        if exact:
            bound = float(info.mip_dual_bound) if mip else float(info.objective_function_value)
            return _Solution(col, float(info.objective_function_value), bound, mip)
        bound = float(info.objective_function_value)
        if not mip:
            return _Solution(col, bound, bound, False)
        idx, down = fix(col)
        h.setOptionValue("solver", "simplex")
        lo_hi = np.concatenate(self.hi)[idx]
        up: F64 = np.where(lo_hi > 1, np.ceil(col[idx] - 1e-6), down).astype(np.float64)
        rounded: _Solution | None = None
        for values in (down.astype(np.float64), up):
            h.changeColsBounds(idx.size, idx.astype(np.int32), values, values)
            if _run(h):
                out = np.asarray(h.getSolution().col_value, dtype=np.float64)
                rounded = _Solution(out, float(h.getInfo().objective_function_value), bound, True)
                break
        small = int(integer.sum()) <= EXACT_AUTO_MAX_INTEGERS
        if small and (rounded is None or rounded.value - bound > MIP_REL_GAP * abs(rounded.value)):
            # Few integer columns: branch and bound is quick, and beats a weak bound.
            h.changeColsBounds(idx.size, idx.astype(np.int32), np.zeros(idx.size), lo_hi)
            h.changeColsIntegrality(
                idx.size, idx.astype(np.int32), np.ones(idx.size, dtype=np.int32)
            )
            h.setOptionValue("solver", "choose")
            h.setOptionValue("time_limit", EXACT_AUTO_SECONDS)
            h.run()
            if h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
                info = h.getInfo()
                out = np.asarray(h.getSolution().col_value, dtype=np.float64)
                value = float(info.objective_function_value)
                if rounded is None or value <= rounded.value:
                    return _Solution(out, value, float(info.mip_dual_bound), True)
        if rounded is None:
            raise RuntimeError("rounding the integer choices left no feasible plan")
        return rounded


@dataclass(frozen=True)
class _Solution:
    col: F64
    value: float
    bound: float  # lower bound on the optimum
    mip: bool


def _run(h: _Highs) -> bool:
    """Run HiGHS; False when the model is infeasible."""
    h.run()
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kOptimal:
        return True
    if status in (
        highspy.HighsModelStatus.kInfeasible,
        highspy.HighsModelStatus.kUnboundedOrInfeasible,
    ):
        return False
    raise RuntimeError(f"HiGHS stopped: {h.modelStatusToString(status)}")


def _term_hours(start: date, months: int, n: int) -> F64:
    """Hours of a ``months``-long term starting at each of the ``n`` horizon months."""
    hours = month_hours(start, n + months)
    cum = np.concatenate([[0.0], np.cumsum(hours)])
    out: F64 = cum[np.arange(n) + months] - cum[np.arange(n)]
    return out


def _solve(
    pb: PlanningProblem,
    options: frozenset[Option] = ALL_OPTIONS,
    providers: frozenset[str] | None = None,
    caps: bool = True,
    elastic: bool = False,
    exact: bool = False,
) -> tuple[Plan | None, F64 | None]:
    """Build and solve one variant. ``elastic``: unmet demand allowed at a penalty, and the
    second value is the unmet GPU-hours (A, T). Returns (None, None) when infeasible.

    Columns count GPUs held on average over a month (GPU-hours / H_t) and money in the
    commitment rows is in ``USD_UNIT``: every coefficient stays within a few orders of
    magnitude of 1, which keeps the simplex fast and accurate.
    """
    t0 = time.perf_counter()
    P, A, T = len(pb.providers), len(pb.accelerators), len(pb.months)
    J = pb.tier_commit_usd.shape[1]
    H = month_hours(pb.months[0], T)
    on = np.ones(P, dtype=bool)
    if providers is not None:
        on = np.array([p in providers for p in pb.providers])
    onpa = on[:, None]

    def offered(price: F64, opt: Option) -> F64:
        """Upper bound (P, A, 1): inf where the option may be used, else 0."""
        ok = np.isfinite(price) & onpa & (opt in options)
        return np.where(ok, np.inf, 0.0)[:, :, None]

    b = _Builder()
    od_month = np.nan_to_num(pb.on_demand)[:, :, None] * H  # list USD per GPU-month
    od = b.cols((P, A, T), 0.0, offered(pb.on_demand, Option.ON_DEMAND))  # paid via z
    sp = b.cols((P, A, T), np.nan_to_num(pb.spot)[:, :, None] * H, offered(pb.spot, Option.SPOT))
    r1 = b.cols(
        (P, A, T),
        np.nan_to_num(pb.reserved_1y)[:, :, None] * _term_hours(pb.months[0], 12, T),
        offered(pb.reserved_1y, Option.RESERVED_1Y),
    )
    r3 = b.cols(
        (P, A, T),
        np.nan_to_num(pb.reserved_3y)[:, :, None] * _term_hours(pb.months[0], 36, T),
        offered(pb.reserved_3y, Option.RESERVED_3Y),
    )
    a1 = b.cols((P, A, T), 0.0, np.inf)
    a3 = b.cols((P, A, T), 0.0, np.inf)
    gpi = pb.gpus_per_instance[:, :, None]
    cb_ok = np.isfinite(pb.capacity_block) & onpa & (Option.CAPACITY_BLOCK in options)
    cb = b.cols(
        (P, A, T),
        np.nan_to_num(pb.capacity_block)[:, :, None] * gpi * H,
        np.where(cb_ok, float(CB_MAX_INSTANCES), 0.0)[:, :, None],
        integer=True,
    )
    x = b.cols((P, A, T), 0.0, np.inf)  # useful GPUs supplied
    s = b.cols((P, T), 0.0, np.inf)  # per provider and month
    # On-demand list spend of a provider is paid at list (z0) or under one signed tier
    # (z[j], at list less the tier's discount); the discount is a fraction of spend, so
    # this split per provider is exact.
    tier_ok = np.isfinite(pb.tier_commit_usd) & onpa & (Option.COMMITTED in options)
    z0 = b.cols((P,), USD_UNIT, np.inf)
    z = b.cols((P, J), (1 - pb.tier_discount) * USD_UNIT, np.where(tier_ok, np.inf, 0.0))
    y = b.cols((P, J), 0.0, np.where(tier_ok, 1.0, 0.0), integer=True)
    short = b.cols((P, J), USD_UNIT, np.where(tier_ok, np.inf, 0.0))

    # Supply: x = signed + od + avail sp + a1 + a3 + gpi (1 - 0.5 / H) cb, where signed
    # is the GPUs of signed contracts (already paid; they occupy availability too).
    signed = pb.signed
    rx = b.rows((P, A, T), signed, signed)
    b.coef(rx, x, 1.0)
    b.coef(rx, od, -1.0)
    b.coef(rx, sp, -pb.spot_availability[:, :, None])
    b.coef(rx, a1, -1.0)
    b.coef(rx, a3, -1.0)
    b.coef(rx, cb, -gpi * (1 - CB_LOST_HOURS / H))
    # Demand met; spot serves training only.
    rd = b.rows((A, T), pb.demand / H, np.inf)
    b.coef(rd[None], x, 1.0)
    if elastic:
        unmet = b.cols((A, T), 1e6, np.inf)
        b.coef(rd, unmet, 1.0)
    rs = b.rows((A, T), -np.inf, pb.demand_training / H)
    b.coef(rs[None], sp, pb.spot_availability[:, :, None])
    # Reservation stocks: a[t] = a[t-1] + r[t] - r[t-term].
    for stock, new, term in ((a1, r1, 12), (a3, r3, 36)):
        rr = b.rows((P, A, T), 0.0, 0.0)
        b.coef(rr, stock, 1.0)
        b.coef(rr[:, :, 1:], stock[:, :, :-1], -1.0)
        b.coef(rr, new, -1.0)
        if term < T:
            b.coef(rr[:, :, term:], new[:, :, :-term], 1.0)
    # Availability: GPUs in use per provider and type, and per provider.
    in_use = ((od, 1.0), (sp, 1.0), (a1, 1.0), (a3, 1.0), (cb, gpi))
    if np.isfinite(pb.max_gpus).any():
        ra = b.rows((P, A, T), -np.inf, np.maximum(pb.max_gpus - signed, 0.0))
        for c, k in in_use:
            b.coef(ra, c, k)
    if np.isfinite(pb.provider_max_gpus).any():
        room = np.maximum(pb.provider_max_gpus - signed.sum(axis=1), 0.0)
        rp = b.rows((P, T), -np.inf, room)
        for c, k in in_use:
            b.coef(rp[:, None, :], c, k)
    if cb_ok.any():
        rc = b.rows((P, T), -np.inf, float(CB_MAX_INSTANCES))
        b.coef(rc[:, None, :], cb, 1.0)
    # Provider totals and the diversification policy.
    rt = b.rows((P, T), 0.0, 0.0)
    b.coef(rt, s, 1.0)
    b.coef(rt[:, None, :], x, -1.0)
    if caps and pb.max_share < 1.0:
        rm = b.rows((P, T), -np.inf, 0.0)
        b.coef(rm, s, 1.0)
        b.coef(rm[:, None, :], s[None, :, :], -pb.max_share)
    if caps and pb.primary is not None and pb.primary_min_share > 0:
        pi = pb.providers.index(pb.primary)
        rq = b.rows((T,), 0.0, np.inf)
        b.coef(rq, s[pi], 1.0)
        b.coef(rq[None, :], s, -pb.primary_min_share)
    # On-demand spend: list = z0 + sum z; at most one tier signed; a signed tier's
    # commitment not met by its discounted spend is paid as ``short``.
    rl = b.rows((P,), 0.0, 0.0)
    b.coef(rl[:, None, None], od, od_month / USD_UNIT)
    b.coef(rl, z0, -1.0)
    if J:
        b.coef(rl[:, None], z, -1.0)
    if J and tier_ok.any():
        r1t = b.rows((P,), -np.inf, 1.0)
        b.coef(r1t[:, None], y, 1.0)
        # Big M: the most list spend possible, an optimal plan never buying more than four
        # times a month's demand of one type from one provider.
        most = np.minimum(pb.max_gpus, 4.0 * (pb.demand / H)[None])
        big_m = (od_month * most).sum(axis=(1, 2)) / USD_UNIT
        ru = b.rows((P, J), -np.inf, 0.0)
        b.coef(ru, z, 1.0)
        b.coef(ru, y, -np.maximum(big_m, 1.0)[:, None])
        rf = b.rows((P, J), 0.0, np.inf)
        b.coef(rf, short, 1.0)
        b.coef(rf, z, 1 - pb.tier_discount)
        b.coef(rf, y, -np.nan_to_num(pb.tier_commit_usd) / USD_UNIT)

    def fix(col: F64) -> tuple[I64, F64]:
        """Whole values for the integer columns from the relaxed solution: Capacity Block
        counts rounded down; per provider the tier that saves most at its relaxed list
        spend (none if none saves)."""
        listed = col[z0] + (col[z].sum(axis=1) if J else 0.0)
        yv = np.zeros((P, J))
        for p in range(P):
            save = pb.tier_discount[p] * listed[p] - np.maximum(
                0.0,
                np.nan_to_num(pb.tier_commit_usd[p]) / USD_UNIT
                - (1 - pb.tier_discount[p]) * listed[p],
            )
            save = np.where(tier_ok[p], save, -np.inf)
            if J and save.max() > 0:
                yv[p, int(np.argmax(save))] = 1.0
        cbv = np.floor(col[cb] + 1e-6)
        return np.concatenate([cb.ravel(), y.ravel()]), np.concatenate([cbv.ravel(), yv.ravel()])

    sol = b.solve(exact, fix)
    if sol is None:
        return None, None
    col = sol.col
    cost = np.concatenate(b.cost)
    zv, z0v = col[z] if J else np.zeros((P, 0)), col[z0]
    listed = z0v + zv.sum(axis=1)
    at_list = np.divide(z0v, listed, out=np.ones(P), where=listed > 0)[:, None, None]
    by: dict[str, dict[Option, float]] = {}
    for p, name in enumerate(pb.providers):
        by[name] = {
            Option.ON_DEMAND: float(z0v[p] * USD_UNIT),
            Option.COMMITTED: float(
                ((1 - pb.tier_discount[p]) * zv[p]).sum() * USD_UNIT
                + (col[short[p]].sum() * USD_UNIT if J else 0.0)
            ),
            Option.SPOT: float((col[sp[p]] * cost[sp[p]]).sum()),
            Option.RESERVED_1Y: float((col[r1[p]] * cost[r1[p]]).sum()),
            Option.RESERVED_3Y: float((col[r3[p]] * cost[r3[p]]).sum()),
            Option.CAPACITY_BLOCK: float((col[cb[p]] * cost[cb[p]]).sum()),
        }
    odh = col[od] * H
    plan = Plan(
        on_demand_hours=odh * at_list,
        committed_hours=odh * (1 - at_list),
        spot_hours=col[sp] * H,
        reserved_1y_new=col[r1],
        reserved_3y_new=col[r3],
        reserved_1y_active=col[a1],
        reserved_3y_active=col[a3],
        capacity_block_instances=np.round(col[cb]),  # whole: fixed or branched on
        supplied_hours=col[x] * H,
        tier=tuple(
            int(np.argmax(col[y[p]])) if J and col[y[p]].max() > 0.5 else -1 for p in range(P)
        ),
        commit_shortfall_usd=col[short].sum(axis=1) * USD_UNIT if J else np.zeros(P),
        cost_usd=by,
        total_usd=float(sum(sum(v.values()) for v in by.values())),
        lower_bound_usd=sol.bound,
        solve_s=time.perf_counter() - t0,
        mip=sol.mip,
    )
    return plan, (col[unmet] * H if elastic else None)


def solve_plan(
    pb: PlanningProblem,
    options: frozenset[Option] = ALL_OPTIONS,
    providers: frozenset[str] | None = None,
    caps: bool = True,
    exact: bool = False,
) -> Plan | None:
    """The cost-minimal plan using only ``options`` of ``providers`` (None: all), with or
    without the diversification policy; None when no such plan exists. ``exact``:
    branch-and-bound on the integer choices instead of relaxing and rounding them."""
    return _solve(pb, options, providers, caps, exact=exact)[0]


def diagnose(pb: PlanningProblem) -> PlanInfeasible:
    """Why ``pb`` has no plan: demand no mix can meet (which months and types, by how
    much), else the diversification policy (where demand falls short under it)."""
    found = _shortfalls(pb, caps=False)
    if found:
        return PlanInfeasible(Infeasibility.DEMAND_UNMET, found)
    return PlanInfeasible(Infeasibility.CAPS, _shortfalls(pb, caps=True))


def _shortfalls(pb: PlanningProblem, caps: bool) -> tuple[Shortfall, ...]:
    """Demand left unmet by the cheapest plan that may leave demand unmet at a penalty."""
    _, unmet = _solve(pb, caps=caps, elastic=True)
    if unmet is None:  # cannot happen with slack on every demand row; be safe
        return ()
    return tuple(
        Shortfall(
            pb.accelerators[a], month_add(pb.months[0], t).strftime("%Y-%m"), float(unmet[a, t])
        )
        for a, t in zip(*np.nonzero(unmet > 1e-6 * np.maximum(pb.demand, 1.0)), strict=True)
    )


def plan_capacity(pb: PlanningProblem, baselines: bool = True, exact: bool = False) -> PlanReport:
    """Solve the plan and (with ``baselines``) its comparisons. Raises ``PlanInfeasible``.

    Promises: the plan never costs more than all on-demand (that plan is a feasible point
    of the full model: when rounding made the plan dearer, the on-demand plan is
    returned), and the uncapped figure never exceeds the plan (a capped plan is also an
    uncapped one), so the caps' cost is never negative.
    """
    t0 = time.perf_counter()
    plan = solve_plan(pb, exact=exact)
    if plan is None:
        raise diagnose(pb)
    if not baselines:
        return PlanReport(pb, plan, None, None, {}, time.perf_counter() - t0)
    on_demand = solve_plan(pb, options=frozenset({Option.ON_DEMAND}), exact=exact)
    if on_demand is not None and on_demand.total_usd < plan.total_usd:
        # Its own bound is of the restricted model: keep the full model's.
        plan = dataclasses.replace(on_demand, lower_bound_usd=plan.lower_bound_usd)
    uncapped = _total(solve_plan(pb, caps=False, exact=exact))
    if uncapped is not None:
        uncapped = min(uncapped, plan.total_usd)
    single = {
        p: _total(solve_plan(pb, providers=frozenset({p}), caps=False, exact=exact))
        for p in pb.providers
    }
    return PlanReport(pb, plan, uncapped, _total(on_demand), single, time.perf_counter() - t0)


def _total(plan: Plan | None) -> float | None:
    return None if plan is None else plan.total_usd
