"""The synthetic generator: determinism, offered load, heavy tail, caps, round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from intercloud.twin.synthetic import (
    DAY_S,
    SyntheticTarget,
    TailFigures,
    TraceFit,
    generate,
)
from intercloud.twin.traces import TraceJob, read_trace
from intercloud.twin.traces.columns import TraceColumns, read_columns

FIX = Path(__file__).resolve().parent / "fixtures"


def heavy_trace(n: int = 20_000, seed: int = 1) -> TraceColumns:
    """An academic-looking trace: power-of-two sizes 1-64, log-normal durations
    (sigma 2: p99/p50 about 100), exponential gaps, three tenants."""
    rng = np.random.default_rng(seed)
    gpus = (2 ** rng.choice(7, n, p=[0.4, 0.25, 0.15, 0.1, 0.06, 0.025, 0.015])).astype(np.int64)
    return TraceColumns(
        submit_s=np.cumsum(rng.exponential(60.0, n)),
        duration_s=rng.lognormal(7.0, 2.0, n),
        gpus=gpus,
        tenant=rng.integers(0, 3, n).astype(np.int32),
        gpu_type=np.full(n, -1, dtype=np.int32),
        priority=np.zeros(n, dtype=np.int64),
        spot_allowed=rng.random(n) < 0.3,
        tenant_names=("a", "b", "c"),
        gpu_type_names=(),
    )


FIT = TraceFit.from_columns(heavy_trace())
YEAR = SyntheticTarget(jobs=200_000, fleet_gpus=500_000, offered_load=0.9, days=365)


def offered(cols: TraceColumns, target: SyntheticTarget) -> float:
    work = float(np.dot(cols.gpus.astype(np.float64), cols.duration_s))
    return work / (target.fleet_gpus * target.days * DAY_S)


def test_seeded_and_deterministic() -> None:
    a, b = generate(FIT, YEAR, seed=3), generate(FIT, YEAR, seed=3)
    for name in ("submit_s", "duration_s", "gpus", "tenant", "spot_allowed"):
        assert np.array_equal(getattr(a.columns, name), getattr(b.columns, name)), name
    assert a.report == b.report
    c = generate(FIT, YEAR, seed=4)
    assert not np.array_equal(a.columns.duration_s, c.columns.duration_s)


@pytest.mark.parametrize(
    "target",
    [
        YEAR,
        SyntheticTarget(jobs=50_000, fleet_gpus=20_000, offered_load=0.7, days=30),
        SyntheticTarget(jobs=10_000, fleet_gpus=1_000, offered_load=1.2, days=7, size_share=0.3),
    ],
)
def test_offered_load_hits_target(target: SyntheticTarget) -> None:
    out = generate(FIT, target, seed=0)
    achieved = offered(out.columns, target)
    assert achieved == pytest.approx(target.offered_load, rel=0.02)
    assert out.report.offered_load == pytest.approx(achieved, rel=1e-9)
    cols = out.columns
    assert len(cols) == target.jobs
    assert cols.submit_s.min() == 0.0 and cols.submit_s.max() < target.horizon_s
    assert np.all(np.diff(cols.submit_s) >= 0)
    assert cols.gpus.max() <= target.job_gpu_cap
    assert cols.duration_s.max() <= target.duration_cap_s
    big = cols.gpus > target.gpu_granularity
    assert np.all(cols.gpus[big] % target.gpu_granularity == 0)


def test_scales_sizes_and_durations_keeping_the_heavy_tail() -> None:
    out = generate(FIT, YEAR, seed=0)
    r = out.report
    # 1 GPU-second in ~10^4 of the trace becomes thousands of GPU-hours: both grow.
    assert r.size_factor >= 8 and r.duration_factor > 2
    assert r.mean_gpus > 8 * float(FIT.gpus.mean())
    src = TailFigures.of(FIT.gpus, FIT.duration_s)
    assert r.source_tail == src
    # Constant factors keep the shape: ratios of quantiles and the GPU-seconds share of
    # the largest jobs stay close to the trace's (the jitter and the caps move them a bit).
    assert r.tail.duration_p99_over_p50 == pytest.approx(src.duration_p99_over_p50, rel=0.25)
    assert r.tail.gpus_p99_over_p50 == pytest.approx(src.gpus_p99_over_p50, rel=0.01)
    assert r.tail.top1pct_gpu_seconds_share > 0.5 * src.top1pct_gpu_seconds_share
    assert r.tail.duration_p99_over_p50 > 50  # still heavy-tailed, not flattened


def test_fixed_size_share_puts_less_on_size() -> None:
    auto = generate(FIT, YEAR, seed=0).report
    dur_only = generate(FIT, SyntheticTarget(**{**YEAR.__dict__, "size_share": 0.0}), 0).report
    assert dur_only.size_factor == 1 < auto.size_factor
    # All on durations: the 60-day cap trims many jobs and the tail with them.
    assert dur_only.jobs_duration_capped > auto.jobs_duration_capped


def test_unreachable_target_reports_the_load_produced() -> None:
    tight = SyntheticTarget(
        jobs=1_000, fleet_gpus=100_000, offered_load=0.9, days=30, max_job_gpus=8,
        max_duration_s=3600.0,
    )  # fmt: skip
    out = generate(FIT, tight, seed=0)
    most = 1_000 * 8 * 3600.0 / (100_000 * 30 * DAY_S)
    assert out.report.offered_load <= most + 1e-12
    assert out.report.offered_load < 0.9
    assert out.report.offered_load == pytest.approx(offered(out.columns, tight))


def test_tenants_from_trace_or_given() -> None:
    own = generate(FIT, YEAR, seed=0).columns
    assert own.tenant_names == ("a", "b", "c")
    named = SyntheticTarget(**{**YEAR.__dict__, "tenants": ("x", "y")})
    cols = generate(FIT, named, seed=0).columns
    assert cols.tenant_names == ("x", "y") and set(np.unique(cols.tenant)) == {0, 1}


def test_written_csv_reads_back_with_the_generic_reader(tmp_path: Path) -> None:
    small = SyntheticTarget(jobs=500, fleet_gpus=4_096, offered_load=0.8, days=14)
    out = generate(FIT, small, seed=9)
    path = tmp_path / "syn.csv"
    out.write_csv(path)
    back = TraceColumns.from_jobs(read_trace(path, "generic_csv"))
    assert np.array_equal(back.submit_s, out.columns.submit_s)
    assert np.array_equal(back.duration_s, out.columns.duration_s)
    assert np.array_equal(back.gpus, out.columns.gpus)
    assert np.array_equal(back.spot_allowed, out.columns.spot_allowed)
    assert [back.tenant_names[t] for t in back.tenant] == [
        out.columns.tenant_names[t] for t in out.columns.tenant
    ]


def test_fit_from_a_real_reader_fixture() -> None:
    fit = TraceFit.from_jobs(read_trace(FIX / "philly_small.csv", "philly"))
    assert len(fit) == 3  # the 0-GPU, 0-second job says nothing about GPU jobs
    out = generate(fit, SyntheticTarget(jobs=1_000, fleet_gpus=2_048, days=7), seed=1)
    assert set(out.columns.tenant_names) == {"vc-a", "vc-b", "vc-c"}
    assert out.report.offered_load == pytest.approx(0.9, rel=0.02)


def test_bad_inputs_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"^jobs: must be >= 1 \(got 0\)$"):
        SyntheticTarget(jobs=0, fleet_gpus=8)
    with pytest.raises(ValueError, match=r"^offered_load: must be a positive number"):
        SyntheticTarget(jobs=1, fleet_gpus=8, offered_load=float("nan"))
    with pytest.raises(ValueError, match=r"^size_share: must be in \[0, 1\]"):
        SyntheticTarget(jobs=1, fleet_gpus=8, size_share=2.0)
    with pytest.raises(ValueError, match="no GPU job with a positive duration"):
        TraceFit.from_jobs([TraceJob(0.0, "", 0, None, 10.0), TraceJob(1.0, "", 4, None, None)])


def office_hours_trace(days: int = 21, per_day: int = 400) -> TraceColumns:
    """Jobs arrive only in the first 8 hours of each day, more on the first 5 days of
    each week."""
    rng = np.random.default_rng(5)
    times = []
    for day in range(days):
        k = per_day if day % 7 < 5 else per_day // 8
        times.append(day * DAY_S + np.sort(rng.uniform(0, 8 * 3600, k)))
    submit = np.concatenate(times)
    n = len(submit)
    return TraceColumns(
        submit_s=submit,
        duration_s=rng.lognormal(7.0, 1.5, n),
        gpus=np.ones(n, dtype=np.int64) * 8,
        tenant=np.zeros(n, dtype=np.int32),
        gpu_type=np.full(n, -1, dtype=np.int32),
        priority=np.zeros(n, dtype=np.int64),
        spot_allowed=np.zeros(n, dtype=np.bool_),
        tenant_names=("t",),
        gpu_type_names=(),
    )


def test_arrival_cycle_is_kept() -> None:
    fit = TraceFit.from_columns(office_hours_trace())
    assert fit.cycle_s == 7 * DAY_S and len(fit.cycle_profile) == 168
    target = SyntheticTarget(jobs=100_000, fleet_gpus=50_000, offered_load=0.8, days=56)
    out = generate(fit, target, seed=2)
    t = out.columns.submit_s
    hour_of_day = (t % DAY_S) / 3600
    assert np.mean(hour_of_day < 8) > 0.99  # only in office hours, like the trace
    weekday = (t // DAY_S) % 7 < 5
    assert 0.9 < np.mean(weekday) < 0.99  # 5 busy days of 400 vs 2 quiet days of 50
    assert out.report.arrival_cycle_s == 7 * DAY_S
    assert out.report.arrival_peak_over_mean > 2
    assert out.report.offered_load == pytest.approx(0.8, rel=0.02)
    assert np.all(np.diff(t) >= 0) and t.max() < target.horizon_s
    # Off: arrivals spread over the whole day.
    flat = generate(fit, SyntheticTarget(**{**target.__dict__, "arrival_cycle": False}), 2)
    flat_hours = (flat.columns.submit_s % DAY_S) / 3600
    assert 0.25 < np.mean(flat_hours < 8) < 0.42
    assert flat.report.arrival_cycle_s == 0.0


def test_short_trace_has_no_cycle() -> None:
    fit = TraceFit.from_jobs(read_trace(FIX / "philly_small.csv", "philly"))
    assert fit.cycle_s == 0.0  # 1.25 h of GPU jobs: too short to tell a cycle


def test_real_trace_scaled_to_the_seed_fleet(shared_data: Path) -> None:
    """Alibaba's openb pods (1-8 GPUs, minutes to months) scaled to a year on 500k GPUs."""
    path = shared_data / "traces/alibaba_openb_v2023/openb_pod_list_default.csv"
    fit = TraceFit.from_columns(read_columns(path, "alibaba_openb"))
    assert len(fit) > 5_000 and fit.cycle_s == 7 * DAY_S
    out = generate(fit, SyntheticTarget(jobs=100_000, fleet_gpus=500_000, days=365), seed=1)
    r = out.report
    assert r.offered_load == pytest.approx(0.9, rel=0.02)
    assert r.offered_load == pytest.approx(offered(out.columns, YEAR), rel=1e-9)
    assert r.size_factor >= 16  # far larger jobs than the trace's 1-8 GPUs
    assert r.tail.duration_p99_over_p50 == pytest.approx(
        r.source_tail.duration_p99_over_p50, rel=0.25
    )
