"""Inference services in a twin run: the autoscaler and the replicas it asks for.

Every ``autoscale_interval_s`` a service's autoscaler reads the highest per-minute
request rate of the interval just past (what a real autoscaler observes; the rate at
the start for the first look) and sets its target, ``ServiceSpec.replicas_for``, never
below the targets of the last ``scale_down_window_s`` (a stabilisation window). Missing
replicas are queued as single-node gangs at the service's priority for the **same
scheduler core** as training: the core places them, provisions elastic capacity for
them, or preempts lower-priority training to make room (ordinary ``PREEMPT``
decisions). Surplus replicas go, queued ones first, then the newest running ones
(through the core's ``finished``). A replica lost to a node failure, an outage, a spot
reclaim or a preemption is replaced by a queued one at once.

Replicas are not trace jobs: they are counted in GPU-hours used, utilisation and cost
(they hold GPUs), and their GPU time is useful work, but not in the job counts, queueing
delays or JCTs. Job ids of replicas start after the trace's.

Measured per service (``report``), integrated exactly over the per-minute rate with the
replicas actually running: ``requests`` asked, ``unmet_requests`` and ``unmet_share``
(above what the running replicas serve), ``slo_met_share`` (share of the time the
running replicas served the whole rate), ``replicas_mean`` / ``replicas_max`` /
``target_mean``, ``gpu_hours``, ``replicas_started``, ``replicas_lost`` (by cause),
``training_preempted`` (training jobs the core preempted for its replicas), and a
``series`` of ``[t_s, target, running, requests_per_s]`` (about 200 points).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from intercloud.scheduler.core import Scheduler
from intercloud.scheduler.fleet.state import FleetState
from intercloud.scheduler.requests import GangRequest
from intercloud.twin.service_load import ServiceSpec

__all__ = ["ServiceDriver"]


@dataclass(slots=True)
class _Service:
    spec: ServiceSpec
    target: int = 0
    waiting: dict[int, GangRequest] = field(default_factory=dict)
    running: dict[int, float] = field(default_factory=dict)  # job -> start
    last_t: float = 0.0
    last_tick: float | None = None
    requests: float = 0.0
    served: float = 0.0
    met_s: float = 0.0
    replica_s: float = 0.0
    target_s: float = 0.0
    replicas_max: int = 0
    started: int = 0
    lost: Counter[str] = field(default_factory=Counter)
    preempted_for: int = 0
    rejected: str = ""
    next_sample: float = 0.0
    wanted: deque[tuple[float, int]] = field(default_factory=deque)  # (t, target) looks
    series: list[list[float]] = field(default_factory=list)


class ServiceDriver:
    """The services of one run (module docstring). The engine calls ``tick`` at each
    service's ``next_tick``, offers ``waiting()`` to the core with the training queue,
    and hands back the core's decisions on replicas (``is_replica``)."""

    def __init__(
        self,
        services: Sequence[ServiceSpec],
        *,
        first_id: int,
        t0: float,
        interval_s: float | None = None,
    ) -> None:
        if interval_s is not None:
            services = [replace(s, autoscale_interval_s=interval_s) for s in services]
        self.svcs = [_Service(s, last_t=t0, next_sample=t0) for s in services]
        self.t0 = t0
        self.first_id = first_id
        self.next_id = first_id
        self.of: dict[int, int] = {}  # replica job id -> service index
        self.sample_s = 3600.0

    def __len__(self) -> int:
        return len(self.svcs)

    def is_replica(self, job: int) -> bool:
        return job >= self.first_id

    def waiting(self) -> list[GangRequest]:
        return [r for s in self.svcs for r in s.waiting.values()]

    def next_tick(self, i: int, now: float) -> float:
        return now + self.svcs[i].spec.autoscale_interval_s

    # ------------------------------------------------------------- autoscaling ----
    def tick(
        self, i: int, now: float, state: FleetState, sched: Scheduler
    ) -> tuple[bool, list[tuple[int, float]]]:
        """Service ``i``'s autoscaler looks at ``now``: queue or stop replicas. Returns
        whether it changed anything, and ``(pool, GPU-seconds served)`` of the replicas
        it stopped."""
        s = self.svcs[i]
        self._advance(s, now)
        spec = s.spec
        if s.last_tick is None:
            seen = spec.rate_at(now)
        else:
            first, last = int(s.last_tick // 60), max(int(s.last_tick // 60), int(now // 60) - 1)
            seen = max(spec.rate_at(m * 60.0) for m in range(first, last + 1))
        s.last_tick = now
        s.wanted.append((now, spec.replicas_for(seen)))
        while s.wanted[0][0] < now - spec.scale_down_window_s:
            s.wanted.popleft()
        s.target = max(w for _, w in s.wanted)
        freed: list[tuple[int, float]] = []
        asked = len(s.waiting)
        if not s.rejected:
            self._fill(i, now)
        changed = len(s.waiting) != asked
        surplus = len(s.waiting) + len(s.running) - s.target
        for j in sorted(s.waiting, reverse=True)[: max(surplus, 0)]:
            del s.waiting[j]
            del self.of[j]
            surplus -= 1
            changed = True
        for j in sorted(s.running, reverse=True)[: max(surplus, 0)]:
            alloc = state.allocations[j]
            freed.append((alloc.pool, alloc.gpus * (now - s.running[j])))
            sched.finished(state, j, now)
            del s.running[j]
            del self.of[j]
        if now >= s.next_sample:
            s.series.append([now - self.t0, s.target, len(s.running), seen])
            s.next_sample = now + self.sample_s
        return changed or bool(freed), freed

    def _fill(self, i: int, now: float) -> None:
        s = self.svcs[i]
        spec = s.spec
        for _ in range(s.target - len(s.waiting) - len(s.running)):
            j = self.next_id
            self.next_id += 1
            self.of[j] = i
            s.waiting[j] = GangRequest(
                job_id=j, tenant=spec.tenant, nodes=1, gpus_per_node=spec.gpus_per_replica,
                accelerators=(spec.accelerator,), priority=spec.priority, submit_s=now,
            )  # fmt: skip

    # ------------------------------------------------------- the core's answers ----
    def placed(self, job: int, now: float) -> None:
        s = self.svcs[self.of[job]]
        self._advance(s, now)
        del s.waiting[job]
        s.running[job] = now
        s.started += 1
        s.replicas_max = max(s.replicas_max, len(s.running))

    def stopped(self, job: int, now: float, cause: str) -> float:
        """Replica ``job`` was evicted (preempted, or its node lost): replaced by a new
        queued one if still wanted. Returns the seconds it served."""
        i = self.of.pop(job)
        s = self.svcs[i]
        self._advance(s, now)
        start = s.running.pop(job)
        s.lost[cause] += 1
        self._fill(i, now)
        return now - start

    def rejected(self, job: int, reason: str) -> None:
        """The core will never place this replica: the service stops asking."""
        s = self.svcs[self.of.pop(job)]
        s.waiting.pop(job, None)
        s.rejected = reason
        for j in list(s.waiting):
            del self.of[j]
        s.waiting.clear()

    def preempted_for(self, job: int) -> None:
        if job in self.of:
            self.svcs[self.of[job]].preempted_for += 1

    def running_seconds(self, now: float) -> list[tuple[int, float]]:
        """``(job, seconds served)`` of the replicas running at ``now`` (the run's end)."""
        return [(j, now - t) for s in self.svcs for j, t in sorted(s.running.items())]

    # ---------------------------------------------------------------- measures ----
    def _advance(self, s: _Service, now: float) -> None:
        """Integrate demand and service from ``s.last_t`` to ``now`` with the replicas
        running meanwhile (the rate is constant within a minute)."""
        t = s.last_t
        if now <= t:
            return
        n = len(s.running)
        cap = s.spec.capacity(n)
        s.replica_s += n * (now - t)
        s.target_s += s.target * (now - t)
        while t < now:
            end = min(now, (math.floor(t / 60) + 1) * 60.0)
            rate = s.spec.rate_at(t)
            dt = end - t
            s.requests += rate * dt
            s.served += min(rate, cap) * dt
            if cap >= rate:
                s.met_s += dt
            t = end
        s.last_t = now

    def report(self, now: float) -> list[dict[str, Any]]:
        out = []
        for s in self.svcs:
            self._advance(s, now)
            span = now - self.t0
            unmet = s.requests - s.served
            out.append(
                {
                    "name": s.spec.name,
                    "tenant": s.spec.tenant,
                    "accelerator": s.spec.accelerator,
                    "gpus_per_replica": s.spec.gpus_per_replica,
                    "autoscale_interval_s": s.spec.autoscale_interval_s,
                    "requests": s.requests,
                    "unmet_requests": unmet,
                    "unmet_share": unmet / s.requests if s.requests > 0 else 0.0,
                    "slo_met_share": s.met_s / span if span > 0 else 1.0,
                    "replicas_mean": s.replica_s / span if span > 0 else 0.0,
                    "target_mean": s.target_s / span if span > 0 else 0.0,
                    "replicas_max": s.replicas_max,
                    "gpu_hours": s.replica_s * s.spec.gpus_per_replica / 3600.0,
                    "replicas_started": s.started,
                    "replicas_lost": dict(sorted(s.lost.items())),
                    "training_preempted": s.preempted_for,
                    "unplaceable": s.rejected,
                    "series": s.series,
                }
            )
        return out
