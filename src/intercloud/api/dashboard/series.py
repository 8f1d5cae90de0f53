"""Utilisation over time: running stretches (``store.stats.running_stretches``) turned
into one series per group (provider, region or GPU type), each point the time-weighted
mean of GPUs (or nodes) busy in its bucket. Pure: time is passed in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from intercloud.store.stats import Stretch

GROUPS = ("provider", "region", "gpu")
MEASURES = ("gpus", "nodes")


@dataclass(frozen=True)
class Series:
    label: str
    points: tuple[float, ...]


def _key(s: Stretch, by: str) -> str:
    if by == "provider":
        return s.provider
    if by == "region":
        return f"{s.provider}/{s.region}"
    return s.accelerator or "cpu"


def busy_series(
    stretches: Sequence[Stretch],
    now: datetime,
    window: timedelta,
    buckets: int,
    by: str = "provider",
    measure: str = "gpus",
) -> tuple[list[datetime], list[Series]]:
    """The bucket starts (``buckets`` of them, ending at ``now``) and one series per
    group, by label. ``measure``: ``gpus`` busy, or ``nodes`` running."""
    if by not in GROUPS or measure not in MEASURES:
        raise ValueError(f"by: one of {GROUPS}, measure: one of {MEASURES}")
    step = window / buckets
    start = now - window
    starts = [start + step * i for i in range(buckets)]
    sums: dict[str, list[float]] = {}
    for s in stretches:
        weight = s.gpus if measure == "gpus" else s.nodes
        if weight <= 0:
            continue
        lo, hi = max(s.start, start), min(s.end or now, now)
        if hi <= lo:
            continue
        row = sums.setdefault(_key(s, by), [0.0] * buckets)
        first = int((lo - start) / step)
        for i in range(first, buckets):
            b_lo, b_hi = starts[i], starts[i] + step
            if b_lo >= hi:
                break
            overlap = (min(hi, b_hi) - max(lo, b_lo)) / step
            row[i] += weight * overlap
    series = [Series(k, tuple(round(v, 3) for v in sums[k])) for k in sorted(sums)]
    return starts, series
