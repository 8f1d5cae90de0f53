"""Synthetic traces fitted to a real one and scaled to a target fleet.

    fit = TraceFit.from_jobs(read_trace("philly.csv", "philly"))
    out = generate(fit, SyntheticTarget(jobs=1_000_000, fleet_gpus=500_000,
                                        offered_load=0.9, days=365), seed=7)
    out.report.offered_load   # what the trace actually offers (close to 0.9)
    out.columns               # TraceColumns: submit_s, duration_s, gpus, tenant, ...

**Fit** (``TraceFit``): the empirical joint distribution of (GPUs, duration, tenant, GPU
type, priority, spot) over the trace's GPU jobs with a known, positive duration, and the
empirical distribution of its inter-arrival gaps.

**Generate** (``generate``), all vectorised, deterministic for a seed (numpy PCG64):

1. *Jobs*: ``n`` rows drawn with replacement from the fit, jointly (a big job keeps its
   own duration); durations are smoothed by a log-normal jitter (sigma
   ``duration_jitter``) so the output does not repeat the trace's exact values.
2. *Scale*: the trace's mean GPU-seconds per job is far below what ``n`` jobs need to
   offer ``offered_load`` of ``fleet_gpus`` over ``days`` (1M jobs on 500k GPUs for a
   year at 90%: ~3,900 GPU-hours a job). The factor ``F`` between them is split: sizes
   are multiplied by a power of two (rounded up to whole ``gpu_granularity`` GPUs above
   it, capped at ``max_job_gpus``), durations by
   the factor ``d`` that makes the total GPU-seconds hit the target, with each duration
   capped at ``max_duration_s`` (``d`` is solved exactly: the cap makes the total
   piecewise linear in ``d``). ``size_share`` None (the default) picks the smallest
   size factor whose duration factor keeps the trace's 99th-percentile duration under
   the cap, so that the duration tail survives; a fixed ``size_share`` puts the power
   of two nearest ``F ** size_share`` on sizes instead. Multiplying by constants keeps
   the shape of both distributions, so the heavy tail is kept; only the caps trim it.
3. *Arrivals*: inter-arrival gaps drawn from the trace's, summed, and stretched so the
   ``n`` arrivals span ``[0, days)``, which keeps burstiness (the gaps' spread). A trace
   of two weeks or more has a weekly cycle (hourly rates), of two days or more a daily
   one (15-minute rates): its gaps are measured with the cycle taken out, and the
   generated arrivals are warped back onto it (``arrival_cycle``), phase counted from
   the trace's start.

**Offered load** is the jobs' total GPU-seconds over ``fleet_gpus x days x 86400`` (work
that arrives late runs past the horizon but still counts). ``SyntheticReport`` says the
load produced (short of the target only when the caps make it unreachable), the factors
used, and tail figures of the trace and the output side by side.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from intercloud.twin.traces.base import TraceJob
from intercloud.twin.traces.columns import BOOL, F64, I32, I64, TraceColumns

DAY_S = 86_400.0
GENERIC_HEADER = (
    "job_id",
    "submit_time",
    "duration",
    "gpus",
    "gpu_type",
    "tenant",
    "priority",
    "spot_allowed",
)
WEEK_S = 7 * DAY_S
DEFAULT_MAX_DURATION_S = 60 * DAY_S


def _cycle(submit: F64) -> tuple[float, F64]:
    """The trace's arrival cycle: (period, relative rate per bin, mean 1). Weekly (hourly
    bins) for a trace of two weeks or more, daily (15-minute bins) for two days or more,
    else none (0.0). Counted over whole periods only, so a part period does not bias
    it. The phase is the trace's own start, which is all a relative time can tell."""
    span = float(submit[-1] - submit[0]) if len(submit) else 0.0
    if span >= 14 * DAY_S:
        period, bins = WEEK_S, 168
    elif span >= 2 * DAY_S:
        period, bins = DAY_S, 96
    else:
        return 0.0, np.ones(1)
    t = submit - submit[0]
    whole = t[t < (span // period) * period]
    idx = np.minimum((whole // (period / bins)).astype(np.int64) % bins, bins - 1)
    counts = np.bincount(idx, minlength=bins).astype(np.float64)
    return period, counts / counts.mean()


def _cumulative(profile: F64, period: float, until: float) -> tuple[F64, F64]:
    """Bin edges covering ``[0, until]`` and the cumulative intensity at each (the
    profile repeated every ``period``)."""
    width = period / len(profile)
    m = max(1, math.ceil(until / width))
    rates = np.tile(profile, m // len(profile) + 1)[:m]
    edges = np.arange(m + 1, dtype=np.float64) * width
    lam = np.concatenate((np.zeros(1), np.cumsum(rates * width))).astype(np.float64)
    return edges, lam


@dataclass(frozen=True)
class TraceFit:
    """The sample the generator draws from: one entry per GPU job of the source trace
    with a known, positive duration (other jobs are dropped: they say nothing about size
    or run time), and the gaps between the trace's sorted submission times, measured
    with its arrival cycle (``cycle_s``, 0 for none; ``cycle_profile``, the relative
    rate per bin) taken out."""

    gpus: I64
    duration_s: F64
    gaps_s: F64
    tenant: I32
    gpu_type: I32
    priority: I64
    spot_allowed: BOOL
    tenant_names: tuple[str, ...]
    gpu_type_names: tuple[str, ...]
    cycle_s: float = 0.0
    cycle_profile: F64 = field(default_factory=lambda: np.ones(1))

    @classmethod
    def from_columns(cls, cols: TraceColumns) -> TraceFit:
        """ValueError when the trace has no GPU job with a positive duration."""
        d = cols.duration_s
        keep = (cols.gpus > 0) & np.isfinite(d) & (d > 0)
        if not keep.any():
            raise ValueError(
                f"the trace has no GPU job with a positive duration to fit ({len(cols)} jobs read)"
            )
        submit = np.sort(cols.submit_s[keep])
        period, profile = _cycle(submit)
        if period:
            # Gaps in the trace's operational time (its cycle taken out), so that the
            # cycle is not counted twice when generate puts it back.
            t = submit - submit[0]
            edges, lam = _cumulative(profile, period, float(t[-1]))
            gaps = np.diff(np.interp(t, edges, lam))
        else:
            gaps = np.diff(submit)
        if len(gaps) == 0 or not (gaps > 0).any():
            gaps = np.ones(1)  # one job, or all at once: evenly spaced arrivals
        return cls(
            gpus=cols.gpus[keep].astype(np.int64),
            duration_s=d[keep].astype(np.float64),
            gaps_s=gaps,
            tenant=cols.tenant[keep],
            gpu_type=cols.gpu_type[keep],
            priority=cols.priority[keep],
            spot_allowed=cols.spot_allowed[keep],
            tenant_names=cols.tenant_names,
            gpu_type_names=cols.gpu_type_names,
            cycle_s=period,
            cycle_profile=profile,
        )

    @classmethod
    def from_jobs(cls, jobs: Iterable[TraceJob]) -> TraceFit:
        return cls.from_columns(TraceColumns.from_jobs(jobs))

    def __len__(self) -> int:
        return len(self.gpus)

    @property
    def mean_gpu_seconds(self) -> float:
        return float(np.mean(self.gpus * self.duration_s))


@dataclass(frozen=True)
class SyntheticTarget:
    """What to scale to. ``size_share``: the share (in log space) of the scale-up that
    goes to job size, None: auto (``_size_factor``); ``max_job_gpus`` None: a twentieth
    of the fleet;
    ``max_duration_s`` None: 60 days or the horizon, whichever is shorter; ``tenants``
    empty: the trace's own tenants, in the trace's proportions, else these names drawn
    uniformly; ``arrival_cycle``: put the trace's daily or weekly cycle back into the
    arrivals (when it has one)."""

    jobs: int
    fleet_gpus: int
    offered_load: float = 0.9
    days: float = 365.0
    size_share: float | None = None
    tail_quantile: float = 0.99
    max_job_gpus: int | None = None
    max_duration_s: float | None = None
    gpu_granularity: int = 8
    duration_jitter: float = 0.1
    arrival_cycle: bool = True
    tenants: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"{name}: {why} (got {getattr(self, name)!r})")

        if self.jobs < 1:
            raise bad("jobs", "must be >= 1")
        if self.fleet_gpus < 1:
            raise bad("fleet_gpus", "must be >= 1")
        if not (0.0 < self.offered_load < math.inf):
            raise bad("offered_load", "must be a positive number")
        if not (0.0 < self.days < math.inf):
            raise bad("days", "must be a positive number")
        if self.size_share is not None and not 0.0 <= self.size_share <= 1.0:
            raise bad("size_share", "must be in [0, 1] or None (auto)")
        if not 0.5 <= self.tail_quantile < 1.0:
            raise bad("tail_quantile", "must be in [0.5, 1)")
        if self.gpu_granularity < 1:
            raise bad("gpu_granularity", "must be >= 1")
        if self.max_job_gpus is not None and self.max_job_gpus < 1:
            raise bad("max_job_gpus", "must be >= 1")
        if self.max_duration_s is not None and not self.max_duration_s > 0:
            raise bad("max_duration_s", "must be > 0")
        if not 0.0 <= self.duration_jitter <= 2.0:
            raise bad("duration_jitter", "must be in [0, 2]")

    @property
    def horizon_s(self) -> float:
        return self.days * DAY_S

    @property
    def job_gpu_cap(self) -> int:
        if self.max_job_gpus is not None:
            return self.max_job_gpus
        g = self.gpu_granularity
        return max(g, (self.fleet_gpus // 20) // g * g)

    @property
    def duration_cap_s(self) -> float:
        if self.max_duration_s is not None:
            return self.max_duration_s
        return min(DEFAULT_MAX_DURATION_S, self.horizon_s)


@dataclass(frozen=True)
class TailFigures:
    """Shape figures of a (gpus, duration) sample, independent of scale: p99/p50 of each,
    and the share of all GPU-seconds in the largest 1% of jobs."""

    gpus_p99_over_p50: float
    duration_p99_over_p50: float
    top1pct_gpu_seconds_share: float

    @classmethod
    def of(cls, gpus: I64, duration_s: F64) -> TailFigures:
        g = gpus.astype(np.float64)
        gs = np.sort(g * duration_s)[::-1]
        top = max(1, len(gs) // 100)
        total = float(gs.sum())
        return cls(
            gpus_p99_over_p50=float(np.percentile(g, 99) / np.percentile(g, 50)),
            duration_p99_over_p50=float(
                np.percentile(duration_s, 99) / np.percentile(duration_s, 50)
            ),
            top1pct_gpu_seconds_share=float(gs[:top].sum() / total) if total else 0.0,
        )


@dataclass(frozen=True)
class SyntheticReport:
    """What a generation produced. ``offered_load`` is the achieved load (module
    docstring); ``size_factor`` and ``duration_factor`` the multipliers applied;
    ``jobs_size_capped``/``jobs_duration_capped`` how many jobs the caps trimmed;
    ``arrival_cycle_s`` the arrival cycle put back (0: none) and
    ``arrival_peak_over_mean`` its busiest bin's rate over the mean."""

    jobs: int
    fleet_gpus: int
    horizon_s: float
    offered_load_target: float
    offered_load: float
    gpu_seconds: float
    size_factor: int
    duration_factor: float
    max_job_gpus: int
    max_duration_s: float
    jobs_size_capped: int
    jobs_duration_capped: int
    mean_gpus: float
    mean_duration_s: float
    source_jobs: int
    arrival_cycle_s: float
    arrival_peak_over_mean: float
    source_tail: TailFigures
    tail: TailFigures

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class SyntheticTrace:
    columns: TraceColumns
    report: SyntheticReport

    def write_csv(self, path: str | Path) -> None:
        """Write the jobs as a ``generic_csv`` trace (readable back by that reader)."""
        c = self.columns
        types, tenants = c.gpu_type_names, c.tenant_names
        columns = (c.submit_s, c.duration_s, c.gpus, c.gpu_type, c.tenant, c.priority)
        with Path(path).open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(GENERIC_HEADER)
            rows = zip(*(x.tolist() for x in columns), c.spot_allowed.tolist(), strict=True)
            for i, (t, d, g, ty, te, p, s) in enumerate(rows):
                gpu_type = types[ty] if ty >= 0 else ""
                tenant = tenants[te] if tenants else ""
                w.writerow((f"syn-{i}", repr(t), repr(d), g, gpu_type, tenant, p, s))


def _scaled_sizes(gpus: I64, factor: int, granularity: int, cap: int) -> I64:
    """``gpus x factor``, rounded up to whole ``granularity`` above it, at most ``cap``
    (itself rounded down to whole ``granularity`` when above it)."""
    s = gpus * factor
    big = s > granularity
    s = np.where(big, -(-s // granularity) * granularity, s)
    if cap > granularity:
        cap = cap // granularity * granularity
    return np.minimum(s, cap).astype(np.int64)


def _duration_factor(gpus: F64, dur: F64, cap: float, target_gs: float) -> tuple[float, float]:
    """The ``d`` with ``sum(gpus x min(dur x d, cap)) == target_gs``, or the smallest ``d``
    that caps every job when the target is out of reach; returns ``(d, achieved
    GPU-seconds)``.

    Exact, O(n log n): with jobs sorted by duration, those capped at ``d`` are a suffix,
    and on each stretch of ``d`` between two jobs reaching the cap the total is linear,
    ``d x P + cap x S`` (``P`` the GPU-seconds of the uncapped prefix, ``S`` the GPUs of
    the capped suffix)."""
    order = np.argsort(dur, kind="stable")
    g, t = gpus[order], dur[order]
    prefix = np.concatenate(([0.0], np.cumsum(g * t)))  # P[k]: jobs < k
    suffix = np.concatenate((np.cumsum(g[::-1])[::-1], [0.0]))  # S[k]: jobs >= k
    # Total when job k just reaches the cap (it and all longer ones capped).
    at_break = cap / t * prefix[:-1] + cap * suffix[:-1]
    if at_break[0] < target_gs:
        d = cap / float(t[0])
    else:
        j = int(np.count_nonzero(at_break >= target_gs)) - 1
        d = (target_gs - cap * float(suffix[j + 1])) / float(prefix[j + 1])
    return d, float(np.dot(gpus, np.minimum(dur * d, cap)))


def _size_factor(
    target: SyntheticTarget, factor: float, gpus0: I64, dur0: F64, target_gs: float
) -> int:
    """A power of two. With ``size_share`` set: nearest to ``factor ** size_share``.

    Auto (None): the smallest whose duration factor (solved with the caps, on a
    subsample of at most 100k jobs) leaves the ``tail_quantile`` duration under the
    duration cap, so the duration tail up to that quantile survives; at most the factor
    that puts the median job at the size cap."""
    if factor <= 1.0:
        return 1
    if target.size_share is not None:
        return int(2 ** round(target.size_share * math.log2(factor)))
    n = len(gpus0)
    m = min(n, 100_000)
    g, t = gpus0[:m], dur0[:m]  # the draw is already random: a prefix is a fair sample
    sub_gs = target_gs * m / n
    q = float(np.quantile(t, target.tail_quantile))
    cap, gcap, gran = target.duration_cap_s, target.job_gpu_cap, target.gpu_granularity
    median = max(1.0, float(np.median(g)))
    limit = max(1, int(2 ** math.floor(math.log2(max(1.0, gcap / median)))))
    s = 1
    while s < limit:
        sizes = _scaled_sizes(g, s, gran, gcap).astype(np.float64)
        d, _ = _duration_factor(sizes, t, cap, sub_gs)
        if d * q <= cap:
            break
        s *= 2
    return s


def generate(fit: TraceFit, target: SyntheticTarget, seed: int = 0) -> SyntheticTrace:
    """Draw ``target.jobs`` jobs from ``fit`` and scale them to ``target`` (module
    docstring: the method). The same ``fit``, ``target`` and ``seed`` give identical
    arrays on every run."""
    rng = np.random.default_rng(seed)
    n = target.jobs
    idx = rng.integers(0, len(fit), n)
    gpus0 = fit.gpus[idx]
    dur0 = fit.duration_s[idx]
    if target.duration_jitter > 0:
        dur0 = dur0 * np.exp(rng.normal(0.0, target.duration_jitter, n))
    horizon = target.horizon_s
    target_gs = target.offered_load * target.fleet_gpus * horizon

    factor = target_gs / float(np.dot(gpus0.astype(np.float64), dur0))
    size_factor = _size_factor(target, factor, gpus0, dur0, target_gs)
    gpu_cap = target.job_gpu_cap
    gpus = _scaled_sizes(gpus0, size_factor, target.gpu_granularity, gpu_cap)
    gf = gpus.astype(np.float64)
    dcap = target.duration_cap_s
    d, achieved = _duration_factor(gf, dur0, dcap, target_gs)
    duration = np.minimum(dur0 * d, dcap)

    gaps = fit.gaps_s[rng.integers(0, len(fit.gaps_s), n)]
    c = np.cumsum(gaps)
    c -= c[0]
    submit = c / c[-1] * horizon * (n - 1) / n if c[-1] > 0 else np.arange(n) * (horizon / n)
    cycle = target.arrival_cycle and fit.cycle_s > 0
    if cycle:
        # Warp operational time onto the trace's cycle: equal shares of the arrivals
        # fall where the cumulative intensity grows by equal amounts.
        edges, lam = _cumulative(fit.cycle_profile, fit.cycle_s, horizon)
        total = float(np.interp(horizon, edges, lam))
        submit = np.minimum(
            np.interp(submit * (total / horizon), lam, edges), np.nextafter(horizon, 0)
        )

    if target.tenants:
        tenant = rng.integers(0, len(target.tenants), n).astype(np.int32)
        tenant_names: Sequence[str] = target.tenants
    else:
        tenant, tenant_names = fit.tenant[idx], fit.tenant_names

    cols = TraceColumns(
        submit_s=submit.astype(np.float64),
        duration_s=duration,
        gpus=gpus,
        tenant=tenant,
        gpu_type=fit.gpu_type[idx],
        priority=fit.priority[idx],
        spot_allowed=fit.spot_allowed[idx],
        tenant_names=tuple(tenant_names),
        gpu_type_names=fit.gpu_type_names,
    )
    report = SyntheticReport(
        jobs=n,
        fleet_gpus=target.fleet_gpus,
        horizon_s=horizon,
        offered_load_target=target.offered_load,
        offered_load=achieved / (target.fleet_gpus * horizon),
        gpu_seconds=achieved,
        size_factor=size_factor,
        duration_factor=d,
        max_job_gpus=gpu_cap,
        max_duration_s=dcap,
        jobs_size_capped=int(np.count_nonzero(gpus0 * size_factor > gpus)),
        jobs_duration_capped=int(np.count_nonzero(dur0 * d > dcap)),
        mean_gpus=float(gf.mean()),
        mean_duration_s=float(duration.mean()),
        source_jobs=len(fit),
        arrival_cycle_s=fit.cycle_s if cycle else 0.0,
        arrival_peak_over_mean=float(fit.cycle_profile.max()) if cycle else 1.0,
        source_tail=TailFigures.of(fit.gpus, fit.duration_s),
        tail=TailFigures.of(gpus, duration),
    )
    return SyntheticTrace(cols, report)
