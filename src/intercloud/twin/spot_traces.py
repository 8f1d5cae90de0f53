"""Spot reclaim rates from spot preemption traces (SkyPilot's "Can't Be Late" traces,
``skypilot_spot_traces/preemption``).

A trace is JSON: ``{"metadata": {"gap_seconds": G}, "data": [n0, n1, ...]}`` where
``n_i`` is how many spot instances of one zone and type were running at tick ``i``
(the collector relaunched them after each preemption). A drop from ``n_i`` to
``n_{i+1} < n_i`` is ``n_i - n_{i+1}`` reclaims; the exposure is the instance-time
running, ``sum(n_i) x G``. The rate is reclaims per running instance-day, pooled over
the files given (a folder: every ``*.json`` under it), which is what
``FailureModels.spot_reclaims_per_node_day`` takes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

__all__ = ["SpotRate", "spot_reclaim_rate"]


@dataclass(frozen=True, slots=True)
class SpotRate:
    """``reclaims`` over ``instance_days`` of running spot instances in ``files`` files."""

    reclaims: int
    instance_days: float
    files: int

    @property
    def per_node_day(self) -> float:
        return self.reclaims / self.instance_days if self.instance_days > 0 else 0.0


def _one(path: Path) -> tuple[int, float]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:  # JSON or UTF-8 decoding
        raise ValueError(f"{path}: cannot read a spot trace ({exc})") from None
    try:
        gap = float(doc["metadata"]["gap_seconds"])
        data = [int(x) for x in doc["data"]]
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"{path}: not a spot trace (needs metadata.gap_seconds and a list data)"
        ) from None
    if not gap > 0 or any(x < 0 for x in data):
        raise ValueError(f"{path}: gap_seconds must be > 0 and counts >= 0")
    drops = sum(a - b for a, b in pairwise(data) if b < a)
    return drops, sum(data) * gap / 86_400.0


def spot_reclaim_rate(path: str | Path) -> SpotRate:
    """The pooled reclaim rate of the trace file, or of every ``*.json`` under the
    folder ``path``. ``ValueError`` (one line naming the file) for anything unreadable
    or a folder without traces."""
    p = Path(path)
    if p.is_dir():
        files = sorted(p.rglob("*.json"))
        if not files:
            raise ValueError(f"{p}: no *.json spot traces under it")
    elif p.exists():
        files = [p]
    else:
        raise ValueError(f"{p}: no such spot trace file or folder")
    reclaims, days = 0, 0.0
    for f in files:
        r, d = _one(f)
        reclaims += r
        days += d
    return SpotRate(reclaims, days, len(files))
