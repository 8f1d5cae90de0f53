"""Failure models of the twin: what goes wrong, how often, each on or off and tunable.

Every model is a rate (0 turns it off) drawn from the engine's seeded random stream:

- **GPU job interruptions** (``interrupts_per_gpu_hour``, default 2e-5, of the order
  Meta reports for Llama 3's 16k-GPU run: 419 unexpected interruptions in 54 days):
  a running job of ``g`` GPUs is interrupted after an exponential time of rate
  ``g x interrupts_per_gpu_hour``; one of its nodes is failed (most such interruptions
  were hardware) and repaired ``interrupt_repair_s`` later.
- **Node failures** (``node_failures_per_1000_node_days``, default 4.0, in the 2.3-6.5
  range reported for large GPU clusters): any usable node fails at that rate, whether
  busy or idle, and is repaired ``node_repair_s`` later.
- **Spot reclaims** (``spot_reclaims_per_node_day``): a usable spot node is taken back
  by its (simulated) provider, which reports it as a ``RECLAIMED`` instance event.
- **Node losses at fixed times** (``node_losses``): a node of a given trace job fails at
  a given time (a scripted scenario, as a fidelity check injects into the live loop).
- **Outages**: ``outages`` at fixed times (a region, or a whole provider when
  ``region`` is empty), and random ones per region (``region_outages_per_year``) or per
  provider (``provider_outages_per_year``), each lasting an exponential time of mean
  ``outage_mean_s``.

A job that loses a node (or its region, or its spot instance, or is preempted) loses
the work since its last checkpoint plus ``JobModel.restart_overhead_s`` and is queued
again for the same scheduler core, which places it elsewhere when its pool is gone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

__all__ = ["FailureModels", "JobModel", "NodeLoss", "Outage"]


@dataclass(frozen=True, slots=True)
class Outage:
    """``provider`` (and ``region``; ``""``: all of its regions) unreachable from
    ``start_s`` (seconds after the simulation starts) for ``duration_s``."""

    provider: str
    region: str
    start_s: float
    duration_s: float

    def __post_init__(self) -> None:
        if not self.provider:
            raise ValueError("outage.provider: must be named")
        if not (self.start_s >= 0 and math.isfinite(self.start_s)):
            raise ValueError(f"outage.start_s: must be >= 0, got {self.start_s}")
        if not (self.duration_s > 0 and math.isfinite(self.duration_s)):
            raise ValueError(f"outage.duration_s: must be > 0, got {self.duration_s}")


@dataclass(frozen=True, slots=True)
class NodeLoss:
    """The first node of trace job ``job`` (its row in the trace) fails ``at_s`` seconds
    after the simulation starts, if the job runs then; it is repaired ``repair_s`` later
    (0: at once, as a local node whose process died frees its slot)."""

    job: int
    at_s: float
    repair_s: float = 0.0

    def __post_init__(self) -> None:
        if self.job < 0:
            raise ValueError(f"node_loss.job: must be >= 0, got {self.job}")
        for name in ("at_s", "repair_s"):
            v = getattr(self, name)
            if not (v >= 0 and math.isfinite(v)):
                raise ValueError(f"node_loss.{name}: must be >= 0, got {v}")


@dataclass(frozen=True, slots=True)
class FailureModels:
    """The failure models (module docstring); ``off()`` turns all of them off."""

    interrupts_per_gpu_hour: float = 2e-5
    interrupt_repair_s: float = 1800.0
    node_failures_per_1000_node_days: float = 4.0
    node_repair_s: float = 4 * 3600.0
    spot_reclaims_per_node_day: float = 0.1
    outages: tuple[Outage, ...] = field(default=())
    node_losses: tuple[NodeLoss, ...] = field(default=())
    region_outages_per_year: float = 0.0
    provider_outages_per_year: float = 0.0
    outage_mean_s: float = 4 * 3600.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float | int) and not (v >= 0 and math.isfinite(v)):
                raise ValueError(f"failures.{f.name}: must be a finite number >= 0, got {v}")
        for name in ("interrupt_repair_s", "node_repair_s", "outage_mean_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"failures.{name}: must be > 0")

    @classmethod
    def off(cls) -> FailureModels:
        return cls(
            interrupts_per_gpu_hour=0.0,
            node_failures_per_1000_node_days=0.0,
            spot_reclaims_per_node_day=0.0,
        )

    def with_(self, **changes: object) -> FailureModels:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class JobModel:
    """How a training job saves and resumes. ``checkpoint_interval_s`` 0: never
    checkpoints (a job that loses a node starts over). ``restart_overhead_s``: time a
    restarted job spends reloading before it makes progress again (paid by every
    attempt after the first). ``default_duration_s``: for trace jobs whose duration is
    unknown."""

    checkpoint_interval_s: float = 3600.0
    restart_overhead_s: float = 600.0
    default_duration_s: float = 3600.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not (v >= 0 and math.isfinite(v)):
                raise ValueError(f"jobs.{f.name}: must be a finite number >= 0, got {v}")

    def saved(self, progress_s: float) -> float:
        """Work saved by checkpoints after ``progress_s`` seconds of progress."""
        c = self.checkpoint_interval_s
        if c <= 0 or progress_s <= 0:
            return 0.0
        return math.floor(progress_s / c + 1e-9) * c
