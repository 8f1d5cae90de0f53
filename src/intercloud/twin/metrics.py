"""What a twin run measured: the recorder the engine feeds, and the report it gives.

Definitions (``TwinReport`` fields; times in seconds, money in USD):

- ``jobs_total`` = ``jobs_completed`` + ``jobs_unplaceable`` + ``jobs_unfinished``:
  every trace job is accounted for. Unplaceable: the scheduler rejected it (larger
  than any pool can ever hold, no accelerator it accepts); unfinished: still queued
  or running when the run stopped.
- ``gpu_hours_used``: GPU-hours allocated to jobs (the integral of allocated GPUs);
  ``gpu_hours_useful``: the part that became kept work (completed, or saved by a
  checkpoint); ``gpu_hours_lost``: work lost since the last checkpoint plus restart
  overhead (``lost_gpu_hours_by_cause``); ``goodput`` = useful / used.
- ``utilization_mean``: used GPU-hours over the fleet's GPUs (every pool at its quota)
  times the simulated time; ``utilization_by_provider`` and ``..._by_gpu_type`` the same
  per provider and accelerator.
- ``queue_delay_*``: first start minus submit, over the jobs that started;
  ``jct_mean_s``: finish minus submit over completed jobs (``jct_quantiles_s``: its 0th,
  5th, ..., 100th percentiles, the JCT CDF); ``makespan_s``: the last
  completion minus the first arrival.
- ``cost_usd``: node-hours present times each pool's price (reserved pools: their
  contract's price, paid whether used or not; elastic pools from launch to release),
  split by pricing kind, contract and provider.
- ``ledger``: the spend ledger of the run (``contracts/ledger.py`` over the run's
  ``UsageInterval`` values, ``twin/usage.py``), in the JSON form of
  ``intercloud contracts status``: per contract committed, spent, projected, on track;
  spend per pricing kind; chargeback per tenant and month; alerts.
- ``preemptions``: jobs the scheduler preempted for others; ``evictions``: jobs stopped
  by an event (node failure, spot reclaim, outage); ``failures``: the events by kind.
- ``events``: events the engine processed; ``cycles``: scheduling cycles; ``wall_s``:
  the run's wall time (the only field that differs between identical runs).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from intercloud.scheduler.fleet.state import Allocation, FleetState
from intercloud.twin.usage import UsageTracker

if TYPE_CHECKING:
    from intercloud.twin.fleet_spec import Fleet

__all__ = ["Recorder", "Sample", "TwinReport"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One point of the time series: ``t_s`` since the start."""

    t_s: float
    allocated_gpus: int
    utilization: float
    queued: int
    running: int
    cost_usd: float
    allocated_by_provider: dict[str, int]


@dataclass(frozen=True)
class TwinReport:
    """A run's figures (module docstring for each)."""

    jobs_total: int
    jobs_completed: int
    jobs_unfinished: int
    jobs_unplaceable: int
    jobs_no_duration: int
    fleet_gpus: int
    simulated_s: float
    gpu_hours_used: float
    gpu_hours_useful: float
    gpu_hours_lost: float
    goodput: float
    utilization_mean: float
    utilization_by_provider: dict[str, float]
    utilization_by_gpu_type: dict[str, float]
    queue_delay_p50_s: float
    queue_delay_p95_s: float
    queue_delay_p99_s: float
    queue_delay_mean_s: float
    jct_mean_s: float
    jct_quantiles_s: list[float]
    makespan_s: float
    cost_usd: float
    cost_by_pricing: dict[str, float]
    cost_by_contract: dict[str, float]
    cost_by_provider: dict[str, float]
    preemptions: int
    evictions: dict[str, int]
    failures: dict[str, int]
    lost_gpu_hours_by_cause: dict[str, float]
    launches: int
    launch_failures: dict[str, int]
    nodes_released: int
    unplaceable_reasons: dict[str, int]
    events: int
    cycles: int
    wall_s: float
    events_per_s: float
    series: list[Sample] = field(default_factory=list)
    ledger: dict[str, Any] = field(default_factory=dict)
    services: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        """Sorted keys, NaN as null: the same run gives the same text (``wall_s`` and
        ``events_per_s`` apart)."""
        return json.dumps(_clean(self.to_dict()), sort_keys=True, indent=1) + "\n"


def _clean(x: Any) -> Any:
    if isinstance(x, float):
        return None if math.isnan(x) or math.isinf(x) else round(x, 6)
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    return x


class _EngineView(Protocol):
    n: int
    t0: float
    queue: dict[int, Any]
    running: int


class Recorder:
    """Accumulates a run's figures as the engine goes (integrals advance with the
    clock; counts as things happen)."""

    def __init__(self, fleet: Fleet, t0: float, n_jobs: int) -> None:
        pools = fleet.pools
        self.pools = pools
        self.contracts = fleet.contracts
        self.usage = UsageTracker(pools, t0)
        self.t0 = t0
        self.last = t0
        n_p = len(pools)
        self.alloc_area = np.zeros(n_p, dtype=np.float64)  # GPU-seconds per pool
        self.present_area = np.zeros(n_p, dtype=np.float64)  # node-seconds per pool
        self.price_s = np.array([p.usd_per_node_hour / 3600.0 for p in pools])
        self.capacity = sum(p.max_gpus for p in pools)
        self.first_start: list[float] = [math.nan] * n_jobs
        self.finish: list[float] = [math.nan] * n_jobs
        self.submit: list[float] = [math.nan] * n_jobs
        self.useful_gs = 0.0
        self.lost_gs: dict[str, float] = {}
        self.evictions: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.launch_failures: Counter[str] = Counter()
        self.reject_reasons: Counter[str] = Counter()
        self.preemptions = 0
        self.launches = 0
        self.released = 0
        self.cycles = 0
        self.completed = 0
        self.unplaceable = 0
        self.series: list[Sample] = []
        self.providers = sorted({p.provider for p in pools})
        self._prov_ix = np.array([self.providers.index(p.provider) for p in pools])

    @property
    def ended(self) -> int:
        return self.completed + self.unplaceable

    def advance(self, state: FleetState, t: float) -> None:
        dt = t - self.last
        if dt > 0:
            self.usage.advance(state, t)
            self.alloc_area += state.pool_alloc_gpus * dt
            self.present_area += state.pool_present_nodes * dt
            self.last = t

    def sample(self, state: FleetState, t: float, queued: int) -> None:
        alloc = state.pool_alloc_gpus
        by_prov = np.bincount(self._prov_ix, weights=alloc, minlength=len(self.providers))
        total = int(alloc.sum())
        self.series.append(
            Sample(
                t_s=t - self.t0,
                allocated_gpus=total,
                utilization=total / self.capacity if self.capacity else 0.0,
                queued=queued,
                running=len(state.allocations),
                cost_usd=float(self.present_area @ self.price_s),
                allocated_by_provider={
                    p: int(v) for p, v in zip(self.providers, by_prov.tolist(), strict=True)
                },
            )
        )

    # ------------------------------------------------------------------ jobs ----
    def started(self, j: int, t: float, submit_s: float, alloc: Allocation) -> None:
        self.usage.job_started(j, t, alloc)
        if math.isnan(self.first_start[j]):
            self.first_start[j] = t
            self.submit[j] = submit_s

    def stopped(self, j: int, t: float) -> None:
        """Job ``j``'s attempt was cut at ``t`` (it is queued again)."""
        self.usage.job_ended(j, t)

    def finished(self, j: int, t: float, submit_s: float) -> None:
        self.usage.job_ended(j, t)
        self.finish[j] = t
        self.submit[j] = submit_s
        self.completed += 1

    def rejected(self, j: int, reason: str) -> None:
        self.unplaceable += 1
        self.reject_reasons[reason.split(":")[0][:80]] += 1

    def useful(self, gpu_s: float, pool: int) -> None:
        self.useful_gs += gpu_s

    def lost(self, gpu_s: float, cause: str) -> None:
        if gpu_s > 0:
            self.lost_gs[cause] = self.lost_gs.get(cause, 0.0) + gpu_s

    # ---------------------------------------------------------------- report ----
    def report(
        self, eng: _EngineView, *, events: int, wall_s: float, no_duration: int
    ) -> TwinReport:
        pools = self.pools
        sim_s = max(self.last - self.t0, 0.0)
        used_gs = float(self.alloc_area.sum())

        def util(keys: list[str], key_of: list[str]) -> dict[str, float]:
            out = {}
            for k in keys:
                cap = sum(p.max_gpus for p, kk in zip(pools, key_of, strict=True) if kk == k)
                area = sum(
                    float(a) for a, kk in zip(self.alloc_area, key_of, strict=True) if kk == k
                )
                if cap > 0:
                    out[k] = area / (cap * sim_s) if sim_s > 0 else 0.0
            return out

        prov_of = [p.provider for p in pools]
        acc_of = [p.accelerator or "cpu" for p in pools]
        cost = self.present_area * self.price_s

        def split(key_of: list[str]) -> dict[str, float]:
            out: dict[str, float] = {}
            for k, c in zip(key_of, cost.tolist(), strict=True):
                out[k] = out.get(k, 0.0) + c
            return dict(sorted(out.items()))

        first = np.array(self.first_start)
        sub = np.array(self.submit)
        started = ~np.isnan(first)
        delay = (first - sub)[started]
        fin = np.array(self.finish)
        done = ~np.isnan(fin)
        jct = (fin - sub)[done]

        def pct(q: float) -> float:
            return float(np.percentile(delay, q)) if delay.size else math.nan

        lost = sum(self.lost_gs.values())
        return TwinReport(
            jobs_total=eng.n,
            jobs_completed=self.completed,
            jobs_unfinished=eng.n - self.completed - self.unplaceable,
            jobs_unplaceable=self.unplaceable,
            jobs_no_duration=no_duration,
            fleet_gpus=self.capacity,
            simulated_s=sim_s,
            gpu_hours_used=used_gs / 3600.0,
            gpu_hours_useful=self.useful_gs / 3600.0,
            gpu_hours_lost=lost / 3600.0,
            goodput=self.useful_gs / used_gs if used_gs > 0 else math.nan,
            utilization_mean=used_gs / (self.capacity * sim_s) if self.capacity and sim_s else 0.0,
            utilization_by_provider=util(sorted(set(prov_of)), prov_of),
            utilization_by_gpu_type=util(sorted(set(acc_of) - {"cpu"}), acc_of),
            queue_delay_p50_s=pct(50),
            queue_delay_p95_s=pct(95),
            queue_delay_p99_s=pct(99),
            queue_delay_mean_s=float(delay.mean()) if delay.size else math.nan,
            jct_mean_s=float(jct.mean()) if jct.size else math.nan,
            jct_quantiles_s=(np.percentile(jct, np.arange(0, 101, 5)).tolist() if jct.size else []),
            makespan_s=float(fin[done].max() - self.t0) if jct.size else math.nan,
            cost_usd=float(cost.sum()),
            cost_by_pricing=split([p.pricing.value for p in pools]),
            cost_by_contract=split([p.contract or "-" for p in pools]),
            cost_by_provider=split(prov_of),
            preemptions=self.preemptions,
            evictions=dict(sorted(self.evictions.items())),
            failures=dict(sorted(self.failures.items())),
            lost_gpu_hours_by_cause={k: v / 3600.0 for k, v in sorted(self.lost_gs.items())},
            launches=self.launches,
            launch_failures=dict(sorted(self.launch_failures.items())),
            nodes_released=self.released,
            unplaceable_reasons=dict(sorted(self.reject_reasons.items())),
            events=events,
            cycles=self.cycles,
            wall_s=wall_s,
            events_per_s=events / wall_s if wall_s > 0 else math.nan,
            series=self.series,
            ledger=self.ledger(),
        )

    def ledger(self) -> dict[str, Any]:
        """The run's spend ledger up to the last instant, as ``contracts status --json``."""
        from datetime import UTC, datetime

        from intercloud.contracts.ledger import accrue
        from intercloud.contracts.status import status_of, to_json

        at = datetime.fromtimestamp(self.last, UTC)
        led = accrue(self.usage.intervals(), self.contracts, at)
        return to_json(status_of(led, self.contracts))
