"""Fair-share scenario: a fixed pool, tenants with weights 1:2:3:4 and endless backlogs.

A self-contained event loop: whenever GPUs free up, the pending queue is sorted by the
``fair_share`` policy and jobs start in that order while they fit (the first that does not
fit blocks the rest: no backfill here). Each tenant's share of GPU-time over the second half
of the run must match its weight within a few percent — with equal jobs, and with tenants
whose jobs differ in size and length (the policy balances GPU-time, not job counts).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import pytest

from intercloud.scheduler.queue_order import get_policy
from intercloud.scheduler.requests import GangRequest, TenantSpec
from intercloud.scheduler.tenancy import TenantLedger

H = 3600.0
WEIGHTS = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}


@dataclass
class Run:
    """What the loop saw: GPU-seconds per tenant inside the window, start order."""

    gpu_s: dict[str, float] = field(default_factory=dict)
    started: list[GangRequest] = field(default_factory=list)


def simulate(
    pool_gpus: int,
    shape: dict[str, tuple[int, float]],  # tenant -> (GPUs per job, duration s)
    horizon_s: float,
    half_life_s: float,
    window_from_s: float,
    burst: tuple[float, str, int] | None = None,  # (at, tenant, jobs) of priority 10
) -> Run:
    led = TenantLedger(
        [TenantSpec(t, weight=w) for t, w in WEIGHTS.items()],
        {"H100": pool_gpus},
        half_life_s=half_life_s,
        month_start_s=0.0,
    )
    policy = get_policy("fair_share")
    # Pending jobs kept per tenant: enough to fill the pool alone, i.e. an endless queue.
    backlog = {t: pool_gpus // gpus + 1 for t, (gpus, _) in shape.items()}
    next_id = 0
    pending: list[GangRequest] = []

    def submit(tenant: str, now: float, priority: int = 0) -> None:
        nonlocal next_id
        gpus, dur = shape[tenant]
        pending.append(
            GangRequest(
                job_id=next_id,
                tenant=tenant,
                nodes=1,
                gpus_per_node=gpus,
                accelerators=("H100",),
                priority=priority,
                submit_s=now,
                duration_s=dur,
            )
        )
        next_id += 1

    for t in WEIGHTS:
        for _ in range(backlog[t]):
            submit(t, 0.0)
    run = Run(gpu_s=dict.fromkeys(WEIGHTS, 0.0))
    free = pool_gpus
    ends: list[tuple[float, int, GangRequest]] = []
    now = 0.0
    while now < horizon_s:
        if burst is not None and now >= burst[0]:
            for _ in range(burst[2]):
                submit(burst[1], now, priority=10)
            burst = None
        order = policy.order(pending, led, now)
        taken: set[int] = set()
        for i in order:
            r = pending[i]
            if r.gpus > free:
                break
            free -= r.gpus
            taken.add(i)
            led.on_start(r.job_id, r.tenant, "H100", r.gpus, 0.0, None, now, r.duration_s)
            assert r.duration_s is not None
            heapq.heappush(ends, (now + r.duration_s, r.job_id, r))
            run.started.append(r)
            lo, hi = max(now, window_from_s), min(now + r.duration_s, horizon_s)
            if hi > lo:
                run.gpu_s[r.tenant] += r.gpus * (hi - lo)
        pending = [r for i, r in enumerate(pending) if i not in taken]
        for t in WEIGHTS:
            mine = sum(1 for r in pending if r.tenant == t and r.priority == 0)
            for _ in range(backlog[t] - mine):
                submit(t, now)
        # Next event: the earliest end (all jobs ending then free their GPUs together).
        now = ends[0][0]
        while ends and ends[0][0] <= now:
            _, jid, r = heapq.heappop(ends)
            led.on_stop(jid, now)
            free += r.gpus
    return run


def shares(run: Run) -> dict[str, float]:
    total = sum(run.gpu_s.values())
    return {t: v / total for t, v in run.gpu_s.items()}


def expected() -> dict[str, float]:
    s = sum(WEIGHTS.values())
    return {t: w / s for t, w in WEIGHTS.items()}


@pytest.mark.parametrize("half_life_s", [4 * H, 24 * H, math.inf])
def test_equal_jobs_converge_to_weights(half_life_s: float) -> None:
    shape = dict.fromkeys(WEIGHTS, (4, H))
    run = simulate(64, shape, 400 * H, half_life_s, window_from_s=200 * H)
    got, want = shares(run), expected()
    for t in WEIGHTS:
        assert got[t] == pytest.approx(want[t], rel=0.01), (t, got)


@pytest.mark.parametrize(
    "shape",
    [
        {"a": (8, 1.5 * H), "b": (2, 0.5 * H), "c": (4, 2.0 * H), "d": (1, 0.75 * H)},
        {"a": (1, 1.5 * H), "b": (2, 0.5 * H), "c": (4, 2.0 * H), "d": (8, 0.75 * H)},
    ],
    ids=["big-jobs-low-weight", "big-jobs-high-weight"],
)
def test_unequal_jobs_converge_to_weights_in_gpu_time(shape: dict[str, tuple[int, float]]) -> None:
    run = simulate(96, shape, 600 * H, 4 * H, window_from_s=300 * H)
    got, want = shares(run), expected()
    for t in WEIGHTS:
        assert got[t] == pytest.approx(want[t], rel=0.03), (t, got)


def test_priority_burst_goes_first_and_fifo_holds_within_each_tenant() -> None:
    shape = dict.fromkeys(WEIGHTS, (4, H))
    run = simulate(64, shape, 60 * H, 6 * H, window_from_s=0.0, burst=(10 * H, "d", 40))
    # d is the tenant with the most usage, yet its priority-10 jobs start before any
    # priority-0 job submitted before or after them, until the burst is drained.
    first_burst = next(i for i, r in enumerate(run.started) if r.priority == 10)
    burst_end = max(i for i, r in enumerate(run.started) if r.priority == 10)
    assert all(r.priority == 10 for r in run.started[first_burst : burst_end + 1])
    assert burst_end - first_burst + 1 == 40
    for t in WEIGHTS:
        for p in (0, 10):
            mine = [r.job_id for r in run.started if r.tenant == t and r.priority == p]
            assert mine == sorted(mine)
