"""The digital twin's engine: a discrete-event simulation that drives the real scheduler.

    fleet = load_fleet("examples/fleets/small-cluster.yaml")
    trace = TraceColumns.from_jobs(read_trace("jobs.csv", "generic_csv"))
    result = simulate(fleet, trace, TwinConfig(seed=7))
    result.report  # twin.metrics.TwinReport

**Clock.** Simulated seconds (POSIX seconds from ``TwinConfig.start_s``; default the
earliest contract start, else 2026-01-01 UTC). Trace submit times are shifted so that
the first job arrives at the start. Nothing reads the wall clock.

**Events.** Arrivals come from the trace in submit order (a cursor, not heap entries);
everything else is a heap of ``(time, seq, kind, a, b)``: job completions, checkpoints,
job interruptions, node failures and repairs, spot reclaims, outage starts and ends,
the ``sim`` providers' answers (launches ready or refused), launch cool-downs, idle
release (``release_idle`` at the ``release_every_s`` steps where an elastic node may
have been idle ``idle_release_s``), samples and scheduling ticks. ``seq`` breaks ties
in the order events were made, so a run is deterministic for a seed.

**Scheduling.** The same ``scheduler.core.Scheduler`` as the live loop, unchanged and
unaware: whenever something changed (an arrival, a completion, a failure, nodes ready),
one ``schedule(state, queue, now)`` runs after every event of that instant
(``tick_s`` 0), or at the next multiple of ``tick_s`` (a control loop's period; faster
at fleet scale), or ``handoff_s`` after the first change not yet decided on (a live
loop's hand-off latency: it sees a change a step after it happens and decides on
everything seen by then). Its decisions are applied as the reconciler would: PLACE starts the
job, PREEMPT stops it (work since its checkpoint lost) and queues it again, REJECT
counts it unplaceable, PROVISION launches instances through the ``sim`` provider of
the pool's provider, RELEASE (``release_idle`` every ``release_every_s``) terminates
them. Provider events enter through the core's own entry points: ``spot_reclaimed``,
``node_failed``, ``region_lost``, ``finished``.

**What is shared with the live loop, and what is not.** Shared: the scheduler core
and every policy in it; ``FleetState``, ``PoolCosts(pools, contracts)``, the
diversification caps and the ``TenantLedger`` (the same constructors, with the same
defaults, that the snapshot builder, ``control.snapshot.build_snapshot``, and
``control.tenancy.build_ledger`` end with); the asynchronous provider
contract (``SimProvider``, polled with ``poll`` and ``lookup(request_id)``). Not
shared: ``build_snapshot``'s first half, which maps provider offerings and the store's
instance rows to pools. The fleet file already gives pools (``PoolSpec``), and that
mapping would lose what the file says per pool (separate on-demand and spot quotas,
per-pool provisioning delays); reserved and committed nodes exist from the start
instead of being instances in the store. Elastic (on-demand and spot) pools start
empty and grow only through the ``sim`` provider. The live loop builds a new
``Scheduler`` and ledger every cycle (the ledger replays the running jobs); the twin
keeps one of each for the run, so the ledger's decayed usage of ended jobs carries
over (the core's memos are exact: they never change a decision).

**Services.** The fleet's inference services (``twin/services.py``): every service's
autoscaler looks at its own interval (``_AUTOSCALE`` events, periodic: they do not keep a
run going) and queues or stops replicas; queued replicas join the trace's queue in the
same ``schedule`` call, and the core's decisions on them (job ids after the trace's) go
back to the services. Replicas count in GPU-hours and cost, not in the job figures.

**Contracts.** A reserved pool exists only inside its contract's window, as the
snapshot builder drops ended contracts: its rows are absent before the start and
removed at the end, the jobs on them evicted (cause ``contract_ended``), so it is paid
for only while the contract runs.

**Provisioning.** Rows the core provisions stay failed (unhealthy) until the
provider reports their instances RUNNING (with the default delays, the pool's own
``provision_delay_s``, exactly when the core expects them); a refused launch keeps its
rows failed for ``launch_cooldown_s`` (the live loop's cool-down) and then gives them
back, so the core neither retries at once nor grows into them meanwhile.

**Work.** A job has ``duration`` seconds of work. An attempt started at ``t0`` after a
restart pays ``restart_overhead_s`` first, then progresses; checkpoints fall every
``checkpoint_interval_s`` of progress (the core reads them from the attempt's schedule,
``FleetState.checkpoint_every``, to know what a preemption would lose: no event each).
When an attempt is cut at ``t``, the checkpointed progress is kept and the rest of the
attempt's GPU-time is lost work; the job is queued again with its remaining work.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from intercloud.model import Offering, PricingKind
from intercloud.providers.contract import InstanceEventKind, InstanceState, LaunchRequest
from intercloud.providers.sim import SimCapacity, SimClock, SimProvider
from intercloud.scheduler.core import Scheduler
from intercloud.scheduler.cost.pool_cost import PoolCosts
from intercloud.scheduler.fleet.pools import PoolSpec
from intercloud.scheduler.fleet.state import FREE, FleetState
from intercloud.scheduler.requests import Decision, DecisionKind, GangRequest
from intercloud.scheduler.tenancy import TenantLedger
from intercloud.twin.failures import FailureModels, JobModel, Outage
from intercloud.twin.fleet_spec import Fleet
from intercloud.twin.metrics import Recorder, TwinReport
from intercloud.twin.services import ServiceDriver
from intercloud.twin.shapes import JobShaper
from intercloud.twin.traces.columns import TraceColumns

__all__ = ["TwinConfig", "TwinResult", "simulate"]

DEFAULT_START_S = dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()
YEAR_S = 365 * 86_400.0

# event kinds (ints: the heap compares tuples)
_END, _INTERRUPT, _NODE_FAIL, _REPAIR, _SPOT = 1, 3, 4, 5, 6
_OUT_START, _OUT_END, _POLL, _COOL, _RELEASE, _SAMPLE, _TICK = 7, 8, 9, 10, 11, 12, 13
_CONTRACT_START, _CONTRACT_END, _AUTOSCALE, _NODE_LOSS = 14, 15, 16, 17

# what keeps a run going once every job has arrived (periodic events do not)
_HOLD, _PLACE = DecisionKind.HOLD, DecisionKind.PLACE
_PROGRESS = frozenset({_END, _INTERRUPT, _REPAIR, _OUT_END, _POLL, _CONTRACT_START})

# job status
_FUTURE, _QUEUED, _RUNNING, _DONE, _REJECTED = 0, 1, 2, 3, 4


@dataclass(frozen=True, slots=True)
class TwinConfig:
    """How a run goes.

    ``queue_order``: a ``scheduler/queue_order`` name (default the live loop's,
    ``priority``). ``until_s``: stop this long after the start (None: when every job has
    finished or can no longer start). ``tick_s``: scheduling period (0: after every
    instant with a change). ``handoff_s``: decide this long after the first change not
    yet decided on (a live loop's hand-off latency; 0: not used). ``sample_s``:
    time-series step (None: about 200 samples).
    ``refuse_probability``: the ``sim`` providers' random stock-outs.
    ``cloud_capacity``: the share of each elastic pool's quota its provider can actually
    supply (1.0: all). ``stall_wakeups``: once nothing runs and nothing is due, jobs
    still queued are tried once a day this many times (a monthly budget rolling over),
    then the run ends with them unfinished."""

    seed: int = 0
    start_s: float | None = None
    until_s: float | None = None
    tick_s: float = 0.0
    handoff_s: float = 0.0
    queue_order: str = "priority"
    preemption: bool = True
    backfill: bool = True
    cost_plan: bool = True
    release_every_s: float = 300.0
    idle_release_s: float = 600.0
    launch_cooldown_s: float = 300.0
    refuse_probability: float = 0.0
    cloud_capacity: float = 1.0
    sample_s: float | None = None
    checkpoint_events: bool = True
    stall_wakeups: int = 35
    autoscale_interval_s: float | None = None
    failures: FailureModels = field(default_factory=FailureModels)
    jobs: JobModel = field(default_factory=JobModel)

    def __post_init__(self) -> None:
        if self.tick_s < 0 or not math.isfinite(self.tick_s):
            raise ValueError(f"tick_s: must be >= 0, got {self.tick_s}")
        if self.handoff_s < 0 or not math.isfinite(self.handoff_s):
            raise ValueError(f"handoff_s: must be >= 0, got {self.handoff_s}")
        if self.handoff_s > 0 and self.tick_s > 0:
            raise ValueError("handoff_s: give either tick_s or handoff_s, not both")
        if self.until_s is not None and not self.until_s > 0:
            raise ValueError(f"until_s: must be > 0, got {self.until_s}")
        if not 0.0 < self.cloud_capacity <= 1.0:
            raise ValueError(f"cloud_capacity: must be in (0, 1], got {self.cloud_capacity}")
        for name in ("release_every_s", "idle_release_s", "launch_cooldown_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be > 0")
        a = self.autoscale_interval_s
        if a is not None and not (10 <= a <= 86_400):
            raise ValueError(f"autoscale_interval_s: must be in [10, 86400], got {a}")


@dataclass(slots=True)
class TwinResult:
    report: TwinReport
    decisions: list[tuple[float, Decision]]  # when ``keep_decisions``


@dataclass(frozen=True, slots=True)
class _Launch:
    job: int
    pool: int
    rows: tuple[int, ...]
    provider: str


def _start_of(fleet: Fleet, cfg: TwinConfig) -> float:
    if cfg.start_s is not None:
        return cfg.start_s
    starts = [c.start.timestamp() for c in fleet.contracts]
    return min(starts) if starts else DEFAULT_START_S


def sim_providers(fleet: Fleet, clock: SimClock, cfg: TwinConfig) -> dict[str, SimProvider]:
    """One ``SimProvider`` per provider of ``fleet``, selling its pools' offerings, with
    each elastic pool's delay and (``cloud_capacity`` of) its quota as capacity."""
    offerings: dict[str, dict[tuple[str, str, str, str], Offering]] = {}
    caps: dict[str, dict[tuple[tuple[str, str, str, str], PricingKind], SimCapacity]] = {}
    for spec in fleet.pools:
        key = (spec.provider, spec.region, spec.zone, spec.instance_type)
        mine = offerings.setdefault(spec.provider, {})
        o = mine.get(key)
        spot = spec.usd_per_node_hour if spec.pricing is PricingKind.SPOT else None
        if o is None:
            o = Offering(
                provider=spec.provider, region=spec.region, zone=spec.zone,
                instance_type=spec.instance_type, accelerator=spec.accelerator,
                accelerator_count=spec.gpus_per_node, vcpus=spec.vcpus_per_node,
                memory_gib=spec.memory_gib_per_node, on_demand_price=spec.usd_per_node_hour,
                spot_price=spot, instances_per_domain=spec.nodes_per_domain,
            )  # fmt: skip
        elif spot is not None:
            o = replace(o, spot_price=spot)
        if spec.pricing is PricingKind.ON_DEMAND:
            o = replace(o, on_demand_price=spec.usd_per_node_hour)
        mine[key] = o
        if spec.elastic:
            n = max(1, math.floor(spec.max_nodes * cfg.cloud_capacity))
            caps.setdefault(spec.provider, {})[(key, spec.pricing)] = SimCapacity(
                n, spec.provision_delay_s
            )
    return {
        name: SimProvider(
            name,
            list(offs.values()),
            clock=clock,
            capacity=caps.get(name, {}),
            default=SimCapacity(0),
            refuse_probability=cfg.refuse_probability,
            seed=cfg.seed * 7919 + i,
        )
        for i, (name, offs) in enumerate(sorted(offerings.items()))
    }


def gpu_capacity(pools: Sequence[PoolSpec]) -> dict[str, int]:
    """GPUs per accelerator the fleet could run (every pool at its quota): the tenant
    ledger's capacity, as ``control.snapshot.gpu_capacity`` computes it."""
    out: dict[str, int] = {}
    for p in pools:
        if p.accelerator and p.max_gpus:
            out[p.accelerator] = out.get(p.accelerator, 0) + p.max_gpus
    return out


class _Engine:
    def __init__(
        self,
        fleet: Fleet,
        trace: TraceColumns,
        cfg: TwinConfig,
        progress: Callable[[float], None] | None,
        keep_decisions: bool,
    ) -> None:
        self.fleet = fleet
        self.cfg = cfg
        self.jm = cfg.jobs
        self.fm = cfg.failures
        self.progress = progress
        self.keep = keep_decisions
        self.decisions: list[tuple[float, Decision]] = []
        self.rng = random.Random(cfg.seed)
        self.t0 = _start_of(fleet, cfg)
        self.now = self.t0
        self.clock = SimClock(self.t0)
        pools = fleet.pools
        # elastic pools start empty: they grow only through the sim providers
        initial = {p: 0 for p, s in enumerate(pools) if s.elastic}
        self.state = FleetState(pools, initial_nodes=initial, now_s=self.t0)
        ledger = TenantLedger(fleet.tenants, gpu_capacity(pools)) if fleet.tenants else None
        self.sched = Scheduler(
            queue_order=cfg.queue_order, ledger=ledger, costs=PoolCosts(pools, fleet.contracts),
            caps=fleet.caps, backfill=cfg.backfill, preemption=cfg.preemption,
            cost_plan=cfg.cost_plan,
        )  # fmt: skip
        self.providers = sim_providers(fleet, self.clock, cfg)
        self.pool_key = [(s.provider, s.region, s.zone, s.instance_type) for s in pools]
        # jobs (trace rows in submit order; job id = row of the trace)
        n = len(trace)
        self.n = n
        order = np.argsort(trace.submit_s, kind="stable")
        self.order: list[int] = order.tolist()
        s0 = float(trace.submit_s[order[0]]) if n else 0.0
        self.submit: list[float] = (self.t0 + (trace.submit_s - s0)).tolist()
        dur = trace.duration_s
        self.no_duration = int(np.isnan(dur).sum())
        self.work: list[float] = np.where(np.isnan(dur), self.jm.default_duration_s, dur).tolist()
        self.gpus_col: list[int] = trace.gpus.tolist()
        self.type_col: list[int] = trace.gpu_type.tolist()
        self.tenant_col: list[int] = trace.tenant.tolist()
        self.prio_col: list[int] = trace.priority.tolist()
        self.spot_col: list[bool] = trace.spot_allowed.tolist()
        self.type_names = trace.gpu_type_names
        self.shaper = JobShaper(pools, fleet.tenants, trace.tenant_names, cfg.seed + 1)
        self.remaining = list(self.work)
        self.status = [_FUTURE] * n
        self.attempt = [0] * n
        self.run_start = [0.0] * n
        self.overhead = [0.0] * n
        self.req: list[GangRequest | None] = [None] * n
        self.queue: dict[int, GangRequest] = {}
        self.ai = 0  # next arrival (index into ``order``)
        # events
        self.heap: list[tuple[float, int, int, int, int]] = []
        self.seq = 0
        self.live = 0  # events of ``_PROGRESS`` kinds in the heap
        self.dirty = False
        self.tick_pending = False
        # rows
        nn = self.state.n_nodes
        self.sick = [0] * nn  # reasons a row is kept unhealthy (failure, boot, outage, ...)
        self.row_iid: dict[int, str] = {}
        self.iid_row: dict[str, int] = {}
        self.launches: dict[str, _Launch] = {}
        self._outs: list[Outage] = []
        self._cool: list[tuple[int, ...]] = []
        self.running = 0
        self.release_at: set[float] = set()
        self.wakeups = 0
        self.launch_seq = 0
        self.poll_at = math.inf
        self.outages: dict[tuple[str, str], int] = {}  # (provider, region) -> depth
        self.spot_rows = [
            r for p, s in enumerate(pools) if s.pricing is PricingKind.SPOT
            for r in self.state.pool_rows(p)
        ]  # fmt: skip
        self.rec = Recorder(fleet, self.t0, n)
        # inference services (twin/services.py): replicas are jobs numbered after the trace
        self.services = (
            ServiceDriver(
                fleet.services, first_id=n, t0=self.t0, interval_s=cfg.autoscale_interval_s
            )
            if fleet.services
            else None
        )

    # ------------------------------------------------------------------ events ----
    def push(self, t: float, kind: int, a: int = 0, b: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, a, b))
        if kind in _PROGRESS:
            self.live += 1

    def changed(self) -> None:
        self.dirty = True
        if self.tick_pending:
            return
        tick, handoff = self.cfg.tick_s, self.cfg.handoff_s
        if tick > 0:
            self.tick_pending = True
            k = math.floor((self.now - self.t0) / tick + 1e-9) + 1
            self.push(self.t0 + k * tick, _TICK)
        elif handoff > 0:
            self.tick_pending = True
            self.push(self.now + handoff, _TICK)

    # --------------------------------------------------------------------- run ----
    def run(self) -> TwinReport:
        wall0 = time.perf_counter()
        cfg = self.cfg
        until = math.inf if cfg.until_s is None else self.t0 + cfg.until_s
        last_submit = self.submit[self.order[-1]] if self.n else self.t0
        span = max(last_submit - self.t0, 3600.0)
        sample_s = cfg.sample_s or max(60.0, (cfg.until_s or span) / 200)
        self.push(self.t0, _SAMPLE)
        self._arm_contracts()
        self._arm_failures()
        if self.services is not None:
            self.services.sample_s = sample_s
            for i in range(len(self.services)):
                self.push(self.t0, _AUTOSCALE, i)
        heap = self.heap
        events = 0
        next_progress = 0
        submit, order = self.submit, self.order
        while True:
            ta = submit[order[self.ai]] if self.ai < self.n else math.inf
            th = heap[0][0] if heap else math.inf
            t = min(ta, th, self.poll_at)
            if t == math.inf or t > until:
                break
            if self.ai >= self.n and not self.queue and not self.running:
                break  # every job has ended
            if not self._going() and not self.dirty and not self.launches:
                if self.queue and self.wakeups < cfg.stall_wakeups:
                    # jobs wait on something the heap does not hold (a budget's month
                    # to roll over): look again a day later, for a while
                    self.wakeups += 1
                    self.dirty = self.tick_pending = True
                    self.push(self.now + 86_400.0, _TICK)
                    continue
                break  # every job arrived and nothing can change any more
            if t > self.now:
                self.rec.advance(self.state, t)
                self.now = t
                self.clock.advance(t)
            while self.ai < self.n and submit[order[self.ai]] <= t:
                self._arrive(order[self.ai])
                self.ai += 1
                events += 1
            while heap and heap[0][0] <= t:
                _, _, kind, a, b = heapq.heappop(heap)
                if kind in _PROGRESS:
                    self.live -= 1
                events += 1
                if kind == _SAMPLE:
                    self.rec.sample(self.state, t, len(self.queue))
                    if self._going():
                        self.push(t + sample_s, _SAMPLE)
                else:
                    self._handle(kind, a, b)
            if self.poll_at <= t:
                self._poll()
            if self.dirty and cfg.tick_s == 0 and cfg.handoff_s == 0:
                self._schedule()
            if self.progress is not None and events >= next_progress:
                next_progress = events + 5000
                self.progress(self._fraction(until))
        if self.now < until < math.inf:
            self.rec.advance(self.state, until)
            self.now = until
        self.rec.sample(self.state, self.now, len(self.queue))
        self._in_progress()
        if self.progress is not None:
            self.progress(1.0)
        report = self.rec.report(
            self, events=events, wall_s=time.perf_counter() - wall0, no_duration=self.no_duration
        )
        if self.services is not None:
            report = replace(report, services=self.services.report(self.now))
        return report

    def _in_progress(self) -> None:
        """Jobs still running at the end: their progress so far is useful work (it is
        kept while they run on), their restart overhead so far lost."""
        for j, alloc in sorted(self.state.allocations.items()):
            if j >= self.n:
                continue  # a service replica (below)
            elapsed = max(0.0, self.now - self.run_start[j])
            progress = min(max(0.0, elapsed - self.overhead[j]), self.remaining[j])
            self.rec.useful(alloc.gpus * progress, alloc.pool)
            self.rec.lost(alloc.gpus * (elapsed - progress), "restart_overhead")
        if self.services is not None:
            for j, served in self.services.running_seconds(self.now):
                alloc = self.state.allocations[j]
                self.rec.useful(alloc.gpus * served, alloc.pool)

    def _going(self) -> bool:
        """Whether jobs may still arrive or run: periodic processes (failures, samples,
        releases) go on only then, so a run ends once nothing can change."""
        return self.ai < self.n or self.running > 0 or self.live > 0

    def _fraction(self, until: float) -> float:
        if until < math.inf:
            return min(1.0, (self.now - self.t0) / (until - self.t0))
        return self.rec.ended / self.n if self.n else 1.0

    # ---------------------------------------------------------------- handlers ----
    def _handle(self, kind: int, a: int, b: int) -> None:
        if kind == _TICK:
            self.tick_pending = False
            if self.dirty:
                self._schedule()
        elif kind == _END:
            if self.status[a] == _RUNNING and self.attempt[a] == b:
                self._finish(a)
        elif kind == _INTERRUPT:
            if self.status[a] == _RUNNING and self.attempt[a] == b:
                alloc = self.state.allocations[a]
                node = alloc.nodes[self.rng.randrange(len(alloc.nodes))]
                self.rec.failures["gpu_interrupt"] += 1
                self._fail_node(node, self.fm.interrupt_repair_s)
        elif kind == _NODE_FAIL:
            self._random_node_failure()
        elif kind == _REPAIR:
            self._heal([a])
        elif kind == _SPOT:
            self._random_spot_reclaim()
        elif kind == _OUT_START:
            self._outage_start(a, b)
        elif kind == _OUT_END:
            self._outage_end(a)
        elif kind == _POLL:
            self._poll()
        elif kind == _COOL:
            self._cooled(a)
        elif kind == _CONTRACT_START:
            rows = self.state.absent_rows(a)
            self.state.provision_rows(a, rows, self.now)
            self.changed()
        elif kind == _CONTRACT_END:
            self._contract_ended(a)
        elif kind == _RELEASE:
            self.release_at.discard(self.now)
            self._release()
        elif kind == _AUTOSCALE:
            self._autoscale(a)
        elif kind == _NODE_LOSS:
            loss = self.fm.node_losses[a]
            if loss.job < self.n and self.status[loss.job] == _RUNNING:
                self.rec.failures["node"] += 1
                self._fail_node(self.state.allocations[loss.job].nodes[0], loss.repair_s)

    def _autoscale(self, i: int) -> None:
        svc = self.services
        assert svc is not None
        changed, freed = svc.tick(i, self.now, self.state, self.sched)
        for pool, gpu_s in freed:
            self.rec.useful(gpu_s, pool)
            if self.state.elastic[pool]:
                self._idle_elastic()
        if changed:
            self.changed()
        if self._going() or self.queue:  # services run as long as training does
            self.push(svc.next_tick(i, self.now), _AUTOSCALE, i)

    def _arrive(self, j: int) -> None:
        t = self.type_col[j]
        r = self.shaper.shape(
            j, self.gpus_col[j], self.type_names[t] if t >= 0 else None, self.tenant_col[j],
            self.prio_col[j], self.spot_col[j], self.submit[j], self.work[j],
        )  # fmt: skip
        self.req[j] = r
        self.status[j] = _QUEUED
        self.queue[j] = r
        self.changed()

    def _schedule(self) -> None:
        self.dirty = False
        queue = list(self.queue.values())
        svc = self.services
        if svc is not None:
            queue += svc.waiting()
        if not queue:
            return
        now = self.now
        decisions = self.sched.schedule(self.state, queue, now)
        self.rec.cycles += 1
        keep = self.keep
        for d in decisions:
            if keep:
                self.decisions.append((now, d))
            k = d.kind
            if k is _HOLD:
                continue  # most of a cycle's decisions: nothing to do
            if svc is not None and d.job_id >= self.n and k is not DecisionKind.PROVISION:
                self._replica_decided(d)
                continue
            if k is _PLACE:
                self._start(d.job_id)
            elif k is DecisionKind.PREEMPT:
                self.rec.preemptions += 1
                if svc is not None:
                    svc.preempted_for(d.for_job)
                self._stopped(d.job_id, "preempted")
            elif k is DecisionKind.REJECT:
                self.status[d.job_id] = _REJECTED
                self.queue.pop(d.job_id, None)
                self.rec.rejected(d.job_id, d.reason)
            elif k is DecisionKind.PROVISION:
                self._launch(d)

    def _replica_decided(self, d: Decision) -> None:
        svc = self.services
        assert svc is not None
        if d.kind is DecisionKind.PLACE:
            svc.placed(d.job_id, self.now)
        elif d.kind is DecisionKind.PREEMPT:
            self._replica_stopped(d.job_id, "preempted")
        elif d.kind is DecisionKind.REJECT:
            svc.rejected(d.job_id, d.reason)

    def _replica_stopped(self, j: int, cause: str) -> None:
        svc = self.services
        assert svc is not None
        alloc = self.state.evicted.pop(j)
        if self.state.elastic[alloc.pool]:
            self._idle_elastic()
        self.rec.useful(alloc.gpus * svc.stopped(j, self.now, cause), alloc.pool)
        self.changed()

    def _start(self, j: int) -> None:
        self.queue.pop(j, None)
        self.status[j] = _RUNNING
        self.running += 1
        self.wakeups = 0
        self.attempt[j] += 1
        a = self.attempt[j]
        now = self.now
        self.run_start[j] = now
        ov = self.jm.restart_overhead_s if a > 1 else 0.0
        self.overhead[j] = ov
        length = ov + self.remaining[j]
        alloc = self.state.allocations[j]
        self.rec.started(j, now, self.submit[j], alloc)
        self.push(now + length, _END, j, a)
        c = self.jm.checkpoint_interval_s
        if self.cfg.checkpoint_events and c > 0 and ov + c < length:
            self.state.checkpoint_every(j, now + ov + c, c, now + length)
        rate = self.fm.interrupts_per_gpu_hour * max(alloc.gpus, 0) / 3600.0
        if rate > 0:
            dt_ = self.rng.expovariate(rate)
            if dt_ < length:
                self.push(now + dt_, _INTERRUPT, j, a)

    def _finish(self, j: int) -> None:
        alloc = self.state.allocations[j]
        self.running -= 1
        self.rec.useful(alloc.gpus * self.remaining[j], alloc.pool)
        self.rec.lost(alloc.gpus * self.overhead[j], "restart_overhead")
        self.remaining[j] = 0.0
        self.sched.finished(self.state, j, self.now)
        if self.state.elastic[alloc.pool]:
            self._idle_elastic()
        self.status[j] = _DONE
        self.rec.finished(j, self.now, self.submit[j])
        self.changed()

    def _stopped(self, j: int, cause: str) -> None:
        """Job ``j`` was evicted (its allocation is in ``state.evicted``): keep the
        checkpointed progress, count the rest as lost, queue it again."""
        alloc = self.state.evicted.pop(j)
        self.rec.stopped(j, self.now)
        self.running -= 1
        if self.state.elastic[alloc.pool]:
            self._idle_elastic()
        elapsed = max(0.0, self.now - self.run_start[j])
        progress = min(max(0.0, elapsed - self.overhead[j]), self.remaining[j])
        saved = self.jm.saved(progress)
        g = alloc.gpus
        self.rec.useful(g * saved, alloc.pool)
        self.rec.lost(g * (elapsed - saved), cause)
        self.remaining[j] -= saved
        self.status[j] = _QUEUED
        req = self.req[j]
        assert req is not None
        nxt = replace(req, duration_s=self.remaining[j] + self.jm.restart_overhead_s)
        self.req[j] = nxt
        self.queue[j] = nxt
        self.changed()

    def _evicted(self, decisions: Sequence[Decision], cause: str) -> None:
        for d in decisions:
            if d.kind is DecisionKind.PREEMPT:
                if self.keep:
                    self.decisions.append((self.now, d))
                self.rec.evictions[cause] += 1
                if d.job_id >= self.n:
                    self._replica_stopped(d.job_id, cause)
                else:
                    self._stopped(d.job_id, cause)

    # ------------------------------------------------------------- node health ----
    def _sicken(self, rows: Sequence[int]) -> None:
        for r in rows:
            self.sick[r] += 1

    def _heal(self, rows: Sequence[int]) -> None:
        ok = []
        for r in rows:
            self.sick[r] -= 1
            if self.sick[r] == 0:
                ok.append(r)
        if ok:
            self.state.set_healthy(ok, True)
            self.changed()
            st = self.state
            if any(st.elastic[int(st.pool[r])] for r in ok):
                self._idle_elastic()

    def _fail_node(self, node: int, repair_s: float) -> None:
        decisions = self.sched.node_failed(self.state, node, self.now)
        self._sicken([node])
        self._evicted(decisions, "node_failure")
        self.push(self.now + repair_s, _REPAIR, node)
        self.changed()

    def _arm_contracts(self) -> None:
        """Reserved pools exist only inside their contract's window (as the snapshot
        builder drops ended contracts): absent before it starts, gone when it ends."""
        windows = {c.name: (c.start.timestamp(), c.end.timestamp()) for c in self.fleet.contracts}
        st = self.state
        for p, spec in enumerate(st.pools):
            w = windows.get(spec.contract or "") if spec.pricing is PricingKind.RESERVED else None
            if w is None:
                continue
            start, end = w
            if start > self.t0:
                st.remove_nodes(list(st.pool_rows(p)))
                self.push(start, _CONTRACT_START, p)
            self.push(max(end, self.t0), _CONTRACT_END, p)

    def _contract_ended(self, p: int) -> None:
        st = self.state
        rows = [r for r in st.pool_rows(p) if st.present[r]]
        for r in rows:
            if st.job[r] != FREE:
                self._evicted(self.sched.node_failed(st, r, self.now), "contract_ended")
        st.remove_nodes(rows)
        self.changed()

    def _arm_failures(self) -> None:
        fm = self.fm
        if fm.node_failures_per_1000_node_days > 0:
            self._next_node_failure()
        if fm.spot_reclaims_per_node_day > 0 and self.spot_rows:
            self._next_spot()
        for o in fm.outages:
            self._plan_outage(o)
        for i, loss in enumerate(fm.node_losses):
            self.push(self.t0 + loss.at_s, _NODE_LOSS, i)
        regions = sorted({(s.provider, s.region) for s in self.fleet.pools})
        provs = sorted({s.provider for s in self.fleet.pools})
        last = self.submit[self.order[-1]] - self.t0 if self.n else 0.0
        horizon = self.cfg.until_s or last + 30 * 86_400
        for rate, places in (
            (fm.region_outages_per_year, regions),
            (fm.provider_outages_per_year, [(p, "") for p in provs]),
        ):
            if rate <= 0:
                continue
            for prov, region in places:
                t = self.rng.expovariate(rate / YEAR_S)
                while t < horizon:
                    dur = self.rng.expovariate(1.0 / fm.outage_mean_s)
                    self._plan_outage(Outage(prov, region, t, max(dur, 60.0)))
                    t += dur + self.rng.expovariate(rate / YEAR_S)

    def _plan_outage(self, o: Outage) -> None:
        self._outs.append(o)
        self.push(self.t0 + o.start_s, _OUT_START, len(self._outs) - 1)

    def _present_nodes(self) -> int:
        return int(self.state.pool_present_nodes.sum())

    def _next_node_failure(self) -> None:
        n = self._present_nodes()
        rate = self.fm.node_failures_per_1000_node_days / 1000.0 / 86_400.0 * max(n, 1)
        self.push(self.now + self.rng.expovariate(rate), _NODE_FAIL)

    def _random_row(self, rows: Sequence[int] | None) -> int | None:
        st = self.state
        for _ in range(64):
            r = (
                self.rng.randrange(st.n_nodes)
                if rows is None
                else rows[self.rng.randrange(len(rows))]
            )
            if st.usable(r):
                return r
        return None

    def _random_node_failure(self) -> None:
        if self.ai < self.n or self.running:
            self._next_node_failure()
        r = self._random_row(None)
        if r is not None:
            self.rec.failures["node"] += 1
            self._fail_node(r, self.fm.node_repair_s)

    def _next_spot(self) -> None:
        st = self.state
        n = sum(
            int(st.pool_present_nodes[p])
            for p, s in enumerate(st.pools)
            if s.pricing is PricingKind.SPOT
        )
        rate = self.fm.spot_reclaims_per_node_day / 86_400.0 * max(n, 1)
        self.push(self.now + self.rng.expovariate(rate), _SPOT)

    def _random_spot_reclaim(self) -> None:
        if self.ai < self.n or self.running:
            self._next_spot()
        r = self._random_row(self.spot_rows)
        if r is None or r not in self.row_iid:
            return
        iid = self.row_iid[r]
        prov = self.providers[self.state.pools[int(self.state.pool[r])].provider]
        prov.reclaim([iid])
        self._poll_provider(prov)

    def _outage_start(self, i: int, _: int) -> None:
        o = self._outs[i]
        st = self.state
        regions = sorted(
            {s.region for s in st.pools if s.provider == o.provider and o.region in ("", s.region)}
        )
        prov = self.providers.get(o.provider)
        if prov is not None:
            prov.set_down(o.region)
        self.rec.failures["outage"] += 1
        for region in regions:
            rows = [
                r for p, s in enumerate(st.pools) if s.provider == o.provider and s.region == region
                for r in st.pool_rows(p)
            ]  # fmt: skip
            decisions = self.sched.region_lost(st, o.provider, region, self.now)
            self._sicken(rows)
            self._evicted(decisions, "outage")
        self.push(self.now + o.duration_s, _OUT_END, i)
        self.changed()
        if prov is not None:
            self._poll_provider(prov)

    def _outage_end(self, i: int) -> None:
        o = self._outs[i]
        st = self.state
        prov = self.providers.get(o.provider)
        if prov is not None:
            prov.set_up(o.region)
        rows = [
            r for p, s in enumerate(st.pools)
            if s.provider == o.provider and o.region in ("", s.region)
            for r in st.pool_rows(p)
        ]  # fmt: skip
        self._heal(rows)

    # --------------------------------------------------------------- providers ----
    def _launch(self, d: Decision) -> None:
        p = d.pool
        spec = self.state.pools[p]
        rows = tuple(d.node_ids)
        self.launch_seq += 1
        rid = f"j{d.job_id}-p{p}-{self.launch_seq}"
        prov = self.providers[spec.provider]
        if spec.provision_delay_s > 0:
            # not usable before the provider says RUNNING (the core counts on the delay)
            self.state.set_healthy(rows, False)
            self._sicken(rows)
        self.launches[rid] = _Launch(d.job_id, p, rows, spec.provider)
        self.rec.launches += 1
        prov.launch(
            LaunchRequest(
                rid, self.pool_key[p], count=len(rows), pricing=spec.pricing,
                job_id=str(d.job_id),
            )
        )  # fmt: skip
        self._want_poll(prov.next_change_s())

    def _want_poll(self, t: float) -> None:
        if t < self.poll_at:
            self.poll_at = t
            if t > self.now:
                self.push(t, _POLL)

    def _poll(self) -> None:
        self.poll_at = math.inf
        for prov in self.providers.values():
            self._poll_provider(prov)

    def _poll_provider(self, prov: SimProvider) -> None:
        obs = prov.poll()
        st = self.state
        for f in obs.failures:
            ln = self.launches.pop(f.request_id, None)
            if ln is None:
                continue
            self.rec.launch_failures[f.kind.value] += 1
            got = st.provisioning.get(ln.job)
            if got is not None and got[1] == ln.rows:
                del st.provisioning[ln.job]
            if st.pools[ln.pool].provision_delay_s <= 0:
                # usable at once, perhaps already bound: evict like a lost node
                for r in ln.rows:
                    self._evicted(self.sched.node_failed(st, r, self.now), "launch_failed")
                self._sicken(ln.rows)
            # the rows stay failed while the offering cools down
            self.push(self.now + self.cfg.launch_cooldown_s, _COOL, self._cooling(ln.rows))
        for e in obs.events:
            if e.kind not in (InstanceEventKind.RECLAIMED, InstanceEventKind.LOST):
                continue  # IMPAIRED: the outage that caused it is applied by the engine
            row = self.iid_row.pop(e.instance_id, None)
            if row is None:
                continue
            del self.row_iid[row]
            if e.kind is InstanceEventKind.RECLAIMED:
                self.rec.failures["spot_reclaim"] += 1
                self._evicted(self.sched.spot_reclaimed(st, [row], self.now), "spot_reclaim")
            else:
                self.rec.failures["instance_lost"] += 1
                self._evicted(self.sched.node_failed(st, row, self.now), "instance_lost")
                st.set_healthy([row], True)
                st.remove_nodes([row])
            self.changed()
        done = []
        for rid, ln in self.launches.items():
            if ln.provider != prov.name:
                continue
            insts = prov.lookup(rid)
            running = [i for i in insts if i.state is InstanceState.RUNNING]
            if len(running) < len(ln.rows):
                continue
            for inst in running:
                row = ln.rows[inst.rank]
                self.row_iid[row] = inst.instance_id
                self.iid_row[inst.instance_id] = row
            if st.pools[ln.pool].provision_delay_s > 0:
                self._heal(ln.rows)
            done.append(rid)
        for rid in done:
            del self.launches[rid]
        self._want_poll(min((p.next_change_s() for p in self.providers.values()), default=math.inf))

    def _cooling(self, rows: tuple[int, ...]) -> int:
        self._cool.append(rows)
        return len(self._cool) - 1

    def _cooled(self, i: int) -> None:
        rows = self._cool[i]
        st = self.state
        for r in rows:
            self.sick[r] -= 1
        st.remove_nodes(rows)
        # the rows are absent: healthy again for whatever instance takes them later
        st.set_healthy([r for r in rows if self.sick[r] == 0], True)
        self.changed()

    def _idle_elastic(self) -> None:
        """An elastic node may have gone idle now: ``release_idle`` at the first
        ``release_every_s`` step once it has been idle ``idle_release_s`` (what calling
        it every step would do, without the calls that could release nothing)."""
        cfg = self.cfg
        k = math.ceil((self.now + cfg.idle_release_s - self.t0) / cfg.release_every_s - 1e-9)
        t = self.t0 + k * cfg.release_every_s
        if t not in self.release_at:
            self.release_at.add(t)
            self.push(t, _RELEASE)

    def _release(self) -> None:
        decisions = self.sched.release_idle(self.state, self.now, self.cfg.idle_release_s)
        for d in decisions:
            spec = self.state.pools[d.pool]
            ids = [self.row_iid.pop(r) for r in d.node_ids if r in self.row_iid]
            for i in ids:
                del self.iid_row[i]
            if ids:
                self.providers[spec.provider].terminate(instance_ids=ids)
            self.rec.released += len(d.node_ids)
        if decisions:
            self.changed()


def simulate(
    fleet: Fleet,
    trace: TraceColumns,
    config: TwinConfig | None = None,
    *,
    progress: Callable[[float], None] | None = None,
    keep_decisions: bool = False,
) -> TwinResult:
    """Run ``trace`` on ``fleet`` (module docstring). ``progress(fraction)`` is called
    now and then; ``keep_decisions`` keeps every decision with its time (tests)."""
    eng = _Engine(fleet, trace, config or TwinConfig(), progress, keep_decisions)
    report = eng.run()
    return TwinResult(report, eng.decisions)
