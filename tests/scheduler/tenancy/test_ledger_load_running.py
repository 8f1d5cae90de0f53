"""``TenantLedger.load_running`` against the replay it stands for: ``on_start`` of each job
in start order, then ``advance(now)``. Counts, borrowing and its promotion order are
exact; the float figures equal the replay's to rounding and do not depend on the order
the jobs are given in (a ledger rebuilt from the same running set is the same ledger,
bit for bit). Then both ledgers go on with the same calls and still agree."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypothesis_budget import examples
from intercloud.scheduler.requests import GangRequest, TenantSpec
from intercloud.scheduler.tenancy import UNKNOWN_DURATION_S, RunningStart, TenantLedger
from intercloud.scheduler.tenancy.running_columns import RunningColumns

TYPES = ("H100", "A100")
DAY = 86400.0
NOW = 1_780_000_000.0  # 2026-05-28, Unix seconds (calendar months)


def _specs(rng: random.Random) -> list[TenantSpec]:
    return [
        TenantSpec(
            name=n,
            weight=rng.choice([0.5, 1.0, 3.0]),
            guaranteed_gpus={g: rng.choice([0, 4, 8, 16]) for g in TYPES},
            can_borrow=rng.random() < 0.8,
            monthly_budget_usd=rng.choice([None, 500.0, 1e5]),
        )
        for n in ("a", "b", "c")
    ]


def _jobs(rng: random.Random, n: int, now: float, span_s: float) -> list[RunningStart]:
    out = []
    for j in range(n):
        start = now - rng.random() * span_s
        if rng.random() < 0.2 and out:
            start = out[rng.randrange(len(out))].start_s  # ties: job id decides
        out.append(
            RunningStart(
                job_id=rng.randrange(10**6) * 100 + j,
                tenant=rng.choice(["a", "b", "c", "stranger"]),
                gpu_type=rng.choice([*TYPES, None]),
                gpus=rng.choice([0, 1, 4, 8]),
                usd_per_hour=rng.choice([0.0, 2.5, 31.0]),
                start_s=start if rng.random() < 0.95 else now + 60.0,  # (clamped to now)
                expected_duration_s=rng.choice([None, 0.0, 600.0, 5 * DAY]),
            )
        )
    return out


def _ledger(specs: list[TenantSpec], half_life: float, calendar: bool) -> TenantLedger:
    return TenantLedger(
        specs,
        {"H100": 48, "A100": 24},
        half_life_s=half_life,
        month_start_s=None if calendar else NOW - 40 * DAY,
        month_length_s=30 * DAY,
    )


def _replayed(specs, jobs, now, half_life, calendar) -> TenantLedger:
    led = _ledger(specs, half_life, calendar)
    for j in sorted(jobs, key=lambda j: (min(j.start_s, now), j.job_id)):
        led.on_start(
            j.job_id, j.tenant, j.gpu_type, j.gpus, j.usd_per_hour, None,
            min(j.start_s, now), expected_duration_s=j.expected_duration_s,
        )  # fmt: skip
    led.advance(now)
    return led


def _loaded(specs, jobs, now, half_life, calendar) -> TenantLedger:
    led = _ledger(specs, half_life, calendar)
    led.load_running(jobs, now)
    return led


def _committed(led: TenantLedger, job_id: int) -> bool:
    job = led._jobs.get(job_id)
    return job is not None and job.committed


def _queued(st_: object) -> list[int]:
    """The jobs in a tenant's commitment queue: its heap and its sorted arrays."""
    heap = [j for _, j in st_.c_heap]  # type: ignore[attr-defined]
    ids = st_.c_ids  # type: ignore[attr-defined]
    return heap + ([] if ids is None else ids[st_.c_next :].tolist())  # type: ignore[attr-defined]


def _exact(led: TenantLedger, now: float) -> tuple[object, ...]:
    """Everything that must match exactly (committed jobs retired at ``now`` first)."""
    for t in led.tenants:
        led.committed(t, now)
    per = []
    for t in led.tenants:
        st_ = led._tenants[t]
        per.append(
            (
                t, st_.version, st_.jobs, st_.c_jobs, dict(st_.own), dict(st_.borrowed),
                dict(st_.running), {g: list(q) for g, q in st_.borrowing.items()},
                sorted(st_.usage), sorted(j for j in _queued(st_) if _committed(led, j)),
            )
        )  # fmt: skip
    jobs = {j: (x.tenant, x.gpu_type, x.gpus, x.borrowed, x.start_s, x.end_s, x.committed)
            for j, x in led._jobs.items()}  # fmt: skip
    reclaim = {(t, g): led.reclaimable(t, g, 1) for t in led.tenants for g in TYPES}
    return (
        per, jobs, dict(led._running), dict(led._bver), reclaim,
        {g: list(b) for g, b in led._borrowing.items()}, led.month(now),
    )  # fmt: skip


def _floats(led: TenantLedger, now: float, last_month: bool = True) -> list[float]:
    """The float figures; ``last_month`` False: without each tenant's last month's spend."""
    out: list[float] = []
    for t in led.tenants:
        out += [led.spent(t, now), led.committed(t, now)]
        out += [led.last_month_spent(t)] if last_month else []
        out += [led.usage(t, now).get(g, 0.0) for g in TYPES]
    out += list(led.dominant_shares(now).values())
    return out


def _close(a: list[float], b: list[float]) -> None:
    for x, y in zip(a, b, strict=True):
        assert x == pytest.approx(y, rel=1e-9, abs=1e-6)


@settings(max_examples=examples(200), deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 60),
    half_life=st.sampled_from([3600.0, 86400.0, math.inf]),
    calendar=st.booleans(),
    span_days=st.sampled_from([0.5, 20.0, 45.0]),
)
def test_load_running_is_the_replay(seed, n, half_life, calendar, span_days):
    rng = random.Random(seed)
    specs = _specs(rng)
    now = NOW + rng.random() * 10 * DAY
    jobs = _jobs(rng, n, now, span_days * DAY)
    rep = _replayed(specs, jobs, now, half_life, calendar)
    shuffled = list(jobs)
    rng.shuffle(shuffled)
    got = _loaded(specs, shuffled, now, half_life, calendar)
    again = _loaded(specs, list(reversed(jobs)), now, half_life, calendar)

    assert _exact(got, now) == _exact(rep, now)
    # the replay's last month is the month of its earliest start when that is further back
    last_month = span_days < 45.0
    _close(_floats(got, now, last_month), _floats(rep, now, last_month))
    # a function of the running set: any order gives the same floats, bit for bit
    assert _floats(again, now) == _floats(got, now)

    # and both go on alike: admissions, a start, stops that promote borrowed work
    later = now + 3600.0
    for t in ("a", "b", "c", "stranger"):
        for g in TYPES:
            req = GangRequest(job_id=-1, tenant=t, nodes=1, gpus_per_node=8, duration_s=7200.0)
            assert (got.admit(req, g, 40.0, later) is None) == (
                rep.admit(req, g, 40.0, later) is None
            )
    for led in (got, rep):
        led.on_start(7, "a", "H100", 8, 12.0, None, later, expected_duration_s=3600.0)
        for j in sorted(x.job_id for x in jobs)[::3]:
            led.on_stop(j, later + 60.0)
    assert _exact(got, later + 60.0) == _exact(rep, later + 60.0)


def test_load_running_needs_an_empty_ledger_and_unique_ids():
    led = _ledger(_specs(random.Random(1)), 3600.0, True)
    job = RunningStart(1, "a", "H100", 8, 1.0, NOW - 60.0)
    with pytest.raises(ValueError, match="given twice"):
        led.load_running([job, job], NOW)
    led = _ledger(_specs(random.Random(1)), 3600.0, True)
    led.load_running([job], NOW)
    with pytest.raises(ValueError, match="nothing running"):
        led.load_running([RunningStart(2, "a", "H100", 8, 1.0, NOW - 60.0)], NOW)


def test_load_running_refused_tenant():
    led = TenantLedger([], {"H100": 8}, default_tenant=None)
    with pytest.raises(KeyError, match="unknown tenant"):
        led.load_running([RunningStart(1, "x", "H100", 8, 1.0, NOW)], NOW)


# -- kept columns: the next cycle's ledger loaded from the last one's columns ------------


def _columns(cols: RunningColumns) -> tuple[object, ...]:
    """What a load reads of the columns, row by row, with codes read as names."""
    return (
        cols.now_s, cols.ids.tolist(), cols.starts.tolist(), cols.raw.tolist(),
        cols.gpus.tolist(), cols.usd.tolist(), cols.dur.tolist(),
        [cols.names[c] for c in cols.tenant.tolist()], [cols.types[c] for c in cols.gtype.tolist()],
    )  # fmt: skip


def _cycle(led: TenantLedger, rng: random.Random, now: float, running: list[int]) -> None:
    """What a scheduler cycle may do to its ledger: start jobs, stop some (promotions),
    retire commitments at a later clock, and try a preemption it rolls back."""
    led.on_start(10**9 + rng.randrange(1000), rng.choice("abc"), rng.choice(TYPES), 8, 9.0,
                 None, now, expected_duration_s=60.0)  # fmt: skip
    for j in rng.sample(running, min(len(running), 3)):
        led.on_stop(j, now)
    rest = [j for j in running if led.is_running(j)]
    cp = led.checkpoint(rest[:4], "a")
    for j in rest[:4]:
        led.on_stop(j, now)
    led.rollback(cp)
    for t in led.tenants:
        led.committed(t, now + 6 * DAY)


@settings(max_examples=examples(100), deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    half_life=st.sampled_from([3600.0, math.inf]),
    calendar=st.booleans(),
)
def test_kept_columns_load_the_ledger_a_fresh_load_makes(seed, half_life, calendar):
    rng = random.Random(seed)
    specs = _specs(rng)
    now = NOW
    running = {j.job_id: j for j in _jobs(rng, rng.randrange(0, 40), now, 20 * DAY)}
    cols = None
    for _ in range(10):
        now += rng.choice([0.0, 30.0, 60.0, 3600.0, 5 * DAY])
        # jobs end, start (some just now, some back-dated, some ahead of the clock) and
        # change (the same id with another start: a restart)
        gone = set(rng.sample(sorted(running), min(len(running), rng.randrange(0, 5))))
        came = _jobs(rng, rng.randrange(0, 5), now, rng.choice([0.0, 600.0, 3 * DAY]))
        came = [j for j in came if j.job_id not in running]
        if running and rng.random() < 0.3:
            j = rng.choice(sorted(running))
            gone.add(j)
            came.append(running[j]._replace(start_s=now - 5.0, gpus=4))
        for j in gone:
            running.pop(j, None)
        running.update((j.job_id, j) for j in came)

        jobs = list(running.values())
        rng.shuffle(jobs)
        led = _ledger(specs, half_life, calendar)
        if cols is None:
            cols = led.load_running(jobs, now)
        else:
            cols = cols.updated(gone, came, now, UNKNOWN_DURATION_S)
            led.load_columns(cols, now)
        fresh = _loaded(specs, jobs, now, half_life, calendar)
        assert _columns(cols) == _columns(RunningColumns.of(jobs, now, UNKNOWN_DURATION_S))
        assert _exact(led, now) == _exact(fresh, now)
        assert _floats(led, now) == _floats(fresh, now)  # bit for bit
        assert list(led._tenants) == list(fresh._tenants)  # registration order
        _cycle(led, rng, now, sorted(running))  # (the kept records are this ledger's)


def test_kept_columns_refuse_what_they_cannot_load():
    job = RunningStart(1, "a", "H100", 8, 1.0, NOW - 60.0)
    cols = RunningColumns.of([job], NOW, UNKNOWN_DURATION_S)
    with pytest.raises(ValueError, match="move back"):
        cols.updated((), (), NOW - 1.0, UNKNOWN_DURATION_S)
    with pytest.raises(ValueError, match="given twice"):
        cols.updated((), [job], NOW, UNKNOWN_DURATION_S)  # still running, not gone
    with pytest.raises(ValueError, match="given twice"):
        cols.updated([1], [job, job], NOW, UNKNOWN_DURATION_S)
    assert len(cols.updated([1], [job], NOW, UNKNOWN_DURATION_S)) == 1
    with pytest.raises(ValueError, match="clock"):
        _ledger(_specs(random.Random(1)), 3600.0, True).load_columns(cols, NOW + 1.0)
