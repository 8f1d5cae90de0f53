"""``/metrics``: Prometheus text format (prometheus-client), for an admin token (the
series name every tenant).

Read from the store at each scrape, so every API process answers the same:

- ``intercloud_queue_jobs{tenant,state,reason}``: unfinished jobs by the reason code they
  wait on (``none`` while nothing holds them);
- ``intercloud_instances{provider,state}``: instance rows by provider and state;
- ``intercloud_workloads_submitted_total{tenant}``: every durable submission;
- ``intercloud_decisions_total{tenant}`` and ``intercloud_decision_wait_seconds``: the
  control loop's placements (PENDING -> PLACING) and how long each job had waited for
  its decision, read incrementally from the event log.

Counted by this process (each API worker has its own; sum them):

- ``intercloud_api_request_seconds{method,route,status}``: API latency by route template;
- ``intercloud_api_submissions_total{tenant,outcome}``: ``POST /v1/workloads`` answered
  (``accepted`` or ``refused``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from intercloud.api.auth import Principal, need
from intercloud.api.roles import Action
from intercloud.store import Store, stats

#: Upper bounds of the decision-wait buckets, in seconds.
WAIT_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, float("inf"))
#: Events read per query while catching up on the event log.
CATCH_UP_ROWS = 10_000

router = APIRouter(include_in_schema=False)
Admin = Annotated[Principal, Depends(need(Action.ADMIN))]


class StoreCollector(Collector):
    """The store-derived series; the decision histogram is folded in from the event log
    as it grows (a cursor on the last event read), never recounted."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._cursor = 0
        self._decisions: dict[str, int] = {}
        self._buckets = [0] * len(WAIT_BUCKETS)
        self._wait_sum = 0.0

    def _catch_up(self) -> None:
        while True:
            rows = stats.placements_after(self.store, self._cursor, CATCH_UP_ROWS)
            for p in rows:
                self._decisions[p.tenant] = self._decisions.get(p.tenant, 0) + 1
                self._wait_sum += p.waited_s
                for i, bound in enumerate(WAIT_BUCKETS):
                    if p.waited_s <= bound:
                        self._buckets[i] += 1
                        break
                self._cursor = p.event_id
            if len(rows) < CATCH_UP_ROWS:
                return

    def collect(self) -> Iterator[Metric]:
        queue = GaugeMetricFamily(
            "intercloud_queue_jobs",
            "Unfinished jobs by tenant, state and the reason code they wait on.",
            labels=["tenant", "state", "reason"],
        )
        for (tenant, state, reason), n in sorted(stats.queue_counts(self.store).items()):
            queue.add_metric([tenant, state, reason], n)
        yield queue
        inst = GaugeMetricFamily(
            "intercloud_instances", "Instances by provider and state.", labels=["provider", "state"]
        )
        for (provider, state), n in sorted(stats.instance_counts(self.store).items()):
            inst.add_metric([provider, state], n)
        yield inst
        subs = CounterMetricFamily(
            "intercloud_workloads_submitted",
            "Durable submissions the store holds, by tenant.",
            labels=["tenant"],
        )
        per_tenant: dict[str, int] = {}
        for (tenant, _state), n in stats.workload_counts(self.store).items():
            per_tenant[tenant] = per_tenant.get(tenant, 0) + n
        for tenant, n in sorted(per_tenant.items()):
            subs.add_metric([tenant], n)
        yield subs
        with self._lock:
            self._catch_up()
            dec = CounterMetricFamily(
                "intercloud_decisions",
                "Placements made by the control loop (PENDING -> PLACING), by tenant.",
                labels=["tenant"],
            )
            for tenant, n in sorted(self._decisions.items()):
                dec.add_metric([tenant], n)
            yield dec
            cumulative, buckets = 0, []
            for bound, n in zip(WAIT_BUCKETS, self._buckets, strict=True):
                cumulative += n
                buckets.append(("+Inf" if bound == float("inf") else f"{bound:g}", cumulative))
            hist = HistogramMetricFamily(
                "intercloud_decision_wait_seconds",
                "Time from a job becoming PENDING to its placement decision.",
            )
            hist.add_metric([], buckets, sum_value=self._wait_sum)
            yield hist


class ApiMetrics:
    """One app's registry: the store collector and this process's API counters."""

    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(StoreCollector(store))
        self.latency = Histogram(
            "intercloud_api_request_seconds",
            "API request latency by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.submissions = Counter(
            "intercloud_api_submissions",
            "POST /v1/workloads answered by this process, by tenant and outcome.",
            ["tenant", "outcome"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


def install_metrics(app: FastAPI, metrics: ApiMetrics) -> None:
    """Time every request; count submissions; serve ``/metrics``."""
    app.state.metrics = metrics
    app.add_middleware(TimedMiddleware, metrics=metrics)
    app.include_router(router)


class TimedMiddleware:
    """Observes each HTTP request's latency by route template and status, and counts
    submissions. Plain ASGI, not ``BaseHTTPMiddleware`` (``@app.middleware``): that one
    runs each request in a task group with memory streams, which cost more CPU than
    the rest of the middleware stack on the submission path."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            self._observe(scope, status, time.perf_counter() - start)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        # the router writes the matched route into the scope it was given: this one
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        method = scope["method"]
        self.metrics.latency.labels(method, route, str(status)).observe(seconds)
        if route == "/v1/workloads" and method == "POST":
            who = scope.get("state", {}).get("principal")
            self.metrics.submissions.labels(
                who.tenant if who else "", "accepted" if status == 201 else "refused"
            ).inc()


@router.get("/metrics")
async def metrics_endpoint(request: Request, who: Admin) -> Response:
    """The Prometheus exposition (an admin token: the series name every tenant)."""
    m: ApiMetrics = request.app.state.metrics
    body = await run_in_threadpool(m.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
