"""How much an inference service is asked, when, and how many replicas that takes.

A service's request rate at simulated time ``t`` (POSIX seconds, UTC) is

    rate(t) = peak_requests_per_s x daily(hour of t) x weekly(weekday of t) x hourly(minute of t)

- ``hourly``: a one-hour request-rate profile repeated every hour, normalised to mean 1.
  ``azure_conv`` and ``azure_code`` are the requests per minute of the Azure LLM inference
  trace 2023 (``twin/data/azure_llm_2023_per_minute.csv``: 57 whole minutes of the
  conversation and code services; the counts only, computed from the public trace);
  ``flat`` is 1. The profile's minutes are stretched over each hour of the clock.
- ``daily``: a cosine between 1 at ``peak_hour_utc`` and ``daily_trough`` twelve hours
  later (interactive load follows the working day).
- ``weekly``: 1 on weekdays, ``weekend_factor`` on Saturday and Sunday.

So ``peak_requests_per_s`` is the mean rate of the busiest hour of a weekday.
``replicas_for(rate)`` is what the autoscaler asks for: enough replicas, each serving
``requests_per_s_per_replica`` at most, to keep them at ``target_utilization``, within
``[min_replicas, max_replicas]``.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = ["PROFILES", "ServiceSpec", "hourly_profile"]

_DATA = Path(__file__).with_name("data") / "azure_llm_2023_per_minute.csv"

#: profile name -> column of the shipped per-minute counts (None: flat)
PROFILES: dict[str, str | None] = {"azure_conv": "conv", "azure_code": "code", "flat": None}


@cache
def hourly_profile(name: str) -> tuple[float, ...]:
    """Per-minute rate factors of profile ``name`` (mean 1), one hour long."""
    column = PROFILES[name]
    if column is None:
        return (1.0,)
    with _DATA.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    counts = [float(r[column]) for r in rows]
    mean = sum(counts) / len(counts)
    return tuple(c / mean for c in counts)


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """One inference service of a fleet (module docstring for the rate and replicas).

    Replicas are single-node gangs of ``gpus_per_replica`` ``accelerator`` GPUs, at
    ``priority`` (above training, so the scheduler core preempts training for them), for
    ``tenant``. The autoscaler looks every ``autoscale_interval_s`` and scales down only
    to the highest target of the last ``scale_down_window_s`` (as Kubernetes' HPA
    stabilises, so that a dip of a few minutes does not stop and restart replicas)."""

    name: str
    tenant: str
    accelerator: str
    gpus_per_replica: int
    requests_per_s_per_replica: float
    peak_requests_per_s: float
    profile: str = "azure_conv"
    daily_trough: float = 0.35
    peak_hour_utc: float = 15.0
    weekend_factor: float = 0.7
    min_replicas: int = 1
    max_replicas: int = 1000
    target_utilization: float = 0.8
    priority: int = 100
    autoscale_interval_s: float = 300.0
    scale_down_window_s: float = 1800.0

    def rate_at(self, t: float) -> float:
        """Requests per second asked at ``t`` (POSIX seconds)."""
        hourly = hourly_profile(self.profile)
        minute = int(t // 60)
        when = dt.datetime.fromtimestamp(minute * 60, dt.UTC)
        hour = when.hour + when.minute / 60.0
        daily = self.daily_trough + (1.0 - self.daily_trough) * 0.5 * (
            1.0 + math.cos(2.0 * math.pi * (hour - self.peak_hour_utc) / 24.0)
        )
        weekly = self.weekend_factor if when.weekday() >= 5 else 1.0
        # the profile's minutes stretched over the hour (57 shipped minutes -> 60)
        return self.peak_requests_per_s * daily * weekly * hourly[when.minute * len(hourly) // 60]

    def replicas_for(self, rate: float) -> int:
        """Replicas that serve ``rate`` at ``target_utilization``, within the bounds."""
        per = self.requests_per_s_per_replica * self.target_utilization
        want = math.ceil(rate / per - 1e-9) if rate > 0 else 0
        return max(self.min_replicas, min(self.max_replicas, want))

    def capacity(self, replicas: int) -> float:
        """Requests per second ``replicas`` can serve."""
        return replicas * self.requests_per_s_per_replica
