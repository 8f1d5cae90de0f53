"""Fidelity: one scenario through the live control loop and through the twin.

    sc = Scenario.from_fleet_text(FLEET_YAML, jobs, losses)
    twin = run_twin(sc)                                   # the twin (engine.simulate)
    live = run_live(sc, store, root, clock="logical")     # the real loop, local provider

A **scenario** is a fleet file with one CPU pool (its nodes are CPU slots, as the local
provider's sliced sites are; ``local_site`` makes the local provider's site from it, so
both sides read the same fleet description), jobs (``ScenarioJob``: submit time,
duration, nodes, priority) and node losses (``NodeLoss``: a node of a running job dies
at a time). The twin gets the jobs as a trace (``twin_trace``: on a fleet without GPUs a
job's size counts CPU nodes, ``twin.shapes``) and the losses as ``FailureModels.
node_losses``, with checkpoints off and no restart overhead (a local job restarts from
scratch).

The live side is the unmodified ``Reconciler`` on a ``LocalProvider`` with the fleet
decider, jobs submitted to the store as training specs (``duration`` given, so backfill
sees what the twin sees; restarts allowed). A lost node is its supervisor process
killed (``SIGKILL``), which the provider reports as ``LOST``.

- ``clock="logical"``: one logical clock is injected everywhere the loop reads time
  (the store's clock, ``Reconciler(clock=, wall_clock=)``). Jobs run until the driver
  ends them (each waits for its end file), and the driver moves the clock from event
  to event: at each instant it first applies what happened (ends, losses, arrivals)
  with placement held, lets the loop absorb them, then lets it decide until it settles
  - the twin's "one scheduling cycle after every event of an instant". No timing
  enters: the decisions are a function of the scenario.
- ``clock="real"``: wall time; jobs sleep their duration; the driver submits and kills
  on time and steps the loop every ``step_s``. For ``bench/fidelity.py``.

``Outcome``: the decisions (``(t_s, kind, job)``: PLACE, PREEMPT and REJECT, job as its
index in the scenario), each attempt's interval, and makespan, mean JCT and node-hours.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from intercloud.control.decide import Decision as LiveDecision
from intercloud.control.decide import Place, Preempt, Reject
from intercloud.control.fleet_decider import FleetDecider, FleetDecisions
from intercloud.control.reconciler import Reconciler
from intercloud.control.states import JobState
from intercloud.providers.local import LocalProvider, pid_of
from intercloud.providers.local_config import LocalConfig, LocalSite
from intercloud.scheduler.reasons import ReasonCode
from intercloud.scheduler.requests import DecisionKind
from intercloud.store import Store
from intercloud.twin.engine import TwinConfig, simulate
from intercloud.twin.failures import FailureModels, JobModel, NodeLoss
from intercloud.twin.fleet_spec import Fleet, parse_fleet
from intercloud.twin.traces.columns import TraceColumns

__all__ = [
    "Attempt",
    "Outcome",
    "Scenario",
    "ScenarioJob",
    "local_site",
    "run_live",
    "run_twin",
    "twin_trace",
]

#: decision kinds compared
KINDS = ("place", "preempt", "reject")
_BUSY = (JobState.PLACING, JobState.PROVISIONING, JobState.RECOVERING, JobState.CANCELLING)


@dataclass(frozen=True, slots=True)
class ScenarioJob:
    submit_s: float
    duration_s: float
    nodes: int = 1
    priority: int = 0


@dataclass(frozen=True)
class Scenario:
    fleet: Fleet
    jobs: tuple[ScenarioJob, ...]
    losses: tuple[NodeLoss, ...] = ()
    #: the POSIX time the scenario starts at (its submit times are relative to it)
    t0: float = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()

    @classmethod
    def from_fleet_text(
        cls, text: str, jobs: Sequence[ScenarioJob], losses: Sequence[NodeLoss] = ()
    ) -> Scenario:
        order = sorted(range(len(jobs)), key=lambda i: (jobs[i].submit_s, i))
        if order != list(range(len(jobs))):
            raise ValueError("jobs: give them in submit order")
        return cls(parse_fleet(text, source="scenario"), tuple(jobs), tuple(losses))


@dataclass(frozen=True, slots=True)
class Attempt:
    job: int
    start_s: float
    end_s: float
    nodes: int
    #: node-seconds it held (None: ``nodes`` x its length)
    node_s: float | None = None


@dataclass
class Outcome:
    decisions: list[tuple[float, str, int]]
    attempts: list[Attempt]
    submit_s: list[float]
    wall_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def final_end(self) -> list[float]:
        end = [math.nan] * len(self.submit_s)
        for a in self.attempts:
            if math.isnan(end[a.job]) or a.end_s > end[a.job]:
                end[a.job] = a.end_s
        return end

    @property
    def makespan_s(self) -> float:
        return max(self.final_end()) - min(self.submit_s)

    @property
    def jct_mean_s(self) -> float:
        """Over the jobs that completed."""
        ends = self.final_end()
        return float(np.nanmean([e - s for e, s in zip(ends, self.submit_s, strict=True)]))

    @property
    def node_hours(self) -> float:
        held = (
            a.node_s if a.node_s is not None else a.nodes * (a.end_s - a.start_s)
            for a in self.attempts
        )
        return sum(held) / 3600.0


# ------------------------------------------------------------------------------ twin --
def twin_trace(jobs: Sequence[ScenarioJob]) -> TraceColumns:
    """The jobs as a trace (sizes as CPU nodes: the fleet has no GPUs)."""
    n = len(jobs)
    return TraceColumns(
        submit_s=np.array([j.submit_s for j in jobs], dtype=np.float64),
        duration_s=np.array([j.duration_s for j in jobs], dtype=np.float64),
        gpus=np.array([j.nodes for j in jobs], dtype=np.int64),
        tenant=np.zeros(n, dtype=np.int32),
        gpu_type=np.full(n, -1, dtype=np.int32),
        priority=np.array([j.priority for j in jobs], dtype=np.int64),
        spot_allowed=np.zeros(n, dtype=np.bool_),
        tenant_names=("default",),
        gpu_type_names=(),
    )


def run_twin(
    sc: Scenario, *, tick_s: float = 0.0, handoff_s: float = 0.0, restart_overhead_s: float = 0.0
) -> Outcome:
    """The scenario in the twin: checkpoints off (a restarted local job starts over),
    ``restart_overhead_s`` paid by every restarted attempt, scheduling after every
    instant (``tick_s`` and ``handoff_s`` 0), every ``tick_s`` (a loop's period) or
    ``handoff_s`` after a change (a loop's hand-off latency)."""
    fm = FailureModels.off().with_(node_losses=sc.losses)
    cfg = TwinConfig(
        start_s=sc.t0, tick_s=tick_s, handoff_s=handoff_s, failures=fm,
        jobs=JobModel(checkpoint_interval_s=0.0, restart_overhead_s=restart_overhead_s),
    )  # fmt: skip
    t = time.perf_counter()
    res = simulate(sc.fleet, twin_trace(sc.jobs), cfg, keep_decisions=True)
    wall = time.perf_counter() - t
    decisions = [
        (round(at - sc.t0, 6), "lost" if d.code is ReasonCode.NODE_FAILED else d.kind.value,
         d.job_id)
        for at, d in res.decisions
        if d.kind in (DecisionKind.PLACE, DecisionKind.PREEMPT, DecisionKind.REJECT)
    ]  # fmt: skip
    # attempts: each PLACE runs until its job's duration is done, or until the job is
    # preempted or loses a node (no checkpoints: all of it again)
    attempts: list[Attempt] = []
    running: dict[int, float] = {}
    for at, kind, j in decisions:
        ov = restart_overhead_s if any(a.job == j for a in attempts) else 0.0
        if j in running and kind in ("preempt", "lost"):
            start = running.pop(j)
            attempts.append(Attempt(j, start, at, sc.jobs[j].nodes))
        elif kind == "place":
            running[j] = at
    for j, start in running.items():
        ov = restart_overhead_s if any(a.job == j for a in attempts) else 0.0
        attempts.append(Attempt(j, start, start + ov + sc.jobs[j].duration_s, sc.jobs[j].nodes))
    attempts.sort(key=lambda a: (a.start_s, a.job))
    return Outcome(
        decisions, attempts, [j.submit_s for j in sc.jobs], wall,
        extra={"report": res.report},
    )  # fmt: skip


# ------------------------------------------------------------------------------ live --
def local_site(fleet: Fleet) -> LocalSite:
    """The local provider's site that is ``fleet``: its one CPU pool, a slot per node."""
    if len(fleet.pools) != 1 or fleet.pools[0].gpus_per_node:
        raise ValueError("fleet: a fidelity scenario has one CPU pool")
    p = fleet.pools[0]
    if p.vcpus_per_node != 1:
        raise ValueError("fleet: the pool's nodes have one vCPU each (a local CPU slot)")
    return LocalSite(
        provider="local", region=p.region, zone=p.zone, cpu_slots=float(p.max_nodes),
        memory_gib=max(1.0, p.memory_gib_per_node) * p.max_nodes, instance_type="local-cpu",
        on_demand_price=p.usd_per_node_hour * p.max_nodes,
    )  # fmt: skip


class _GatedDecider(FleetDecider):
    """The fleet decider, recording what it decides; while ``held`` it decides nothing
    (the loop absorbs an instant's events before deciding, as the twin does)."""

    def __init__(self) -> None:
        super().__init__("priority", preemption=True)
        self.held = False
        self.log: list[tuple[float, LiveDecision]] = []

    def decide_fleet(self, pending: Sequence[Any], inputs: Any) -> FleetDecisions:
        # Every path of the loop (``decide`` too) comes through here.
        if self.held:
            return FleetDecisions()
        out = super().decide_fleet(pending, inputs)
        now = float(inputs.now_s)
        self.log.extend((now, d) for d in out.jobs if isinstance(d, Place | Preempt | Reject))
        return out


class _Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def dt(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)


def _spec(name: str, job: ScenarioJob, run: str) -> str:
    doc = {
        "kind": "training",
        "name": name,
        "num_nodes": job.nodes,
        "duration": f"{job.duration_s:g}s",
        "resources": {"instance_type": "local-cpu"},
        "restart": {"max_restarts": 10},
        "run": run,
    }
    return yaml.safe_dump(doc, sort_keys=False)


def run_live(
    sc: Scenario,
    store_factory: Callable[[Callable[[], datetime]], Store],
    root: Path,
    *,
    clock: Literal["logical", "real"] = "logical",
    step_s: float = 0.1,
    timeout_s: float = 600.0,
) -> Outcome:
    """The scenario through the live loop (module docstring). ``store_factory(clock)``
    opens an empty store on that clock; ``root`` is the local provider's folder."""
    t_start = time.perf_counter()
    logical = clock == "logical"
    clk = _Clock(sc.t0 if logical else time.time())
    t0 = clk.t
    store = store_factory(clk.dt if logical else (lambda: datetime.now(UTC)))
    site = local_site(sc.fleet)
    provider = LocalProvider(LocalConfig(root=root, sites=(site,), kill_grace_s=1.0))
    decider = _GatedDecider()
    ends = root / "ends"
    ends.mkdir(parents=True, exist_ok=True)
    rec = Reconciler(
        store, {provider.name: provider}, decider=decider, retry_backoff_s=(0.0, 0.0),
        clock=clk if logical else time.monotonic, wall_clock=clk if logical else time.time,
    )  # fmt: skip
    rec.recover()
    sid: list[int] = []
    index: dict[int, int] = {}
    deadline = time.monotonic() + timeout_s

    def submit(i: int) -> None:
        j = sc.jobs[i]
        if logical:
            mark = f"{ends}/$INTERCLOUD_JOB_ID-$INTERCLOUD_ATTEMPT"
            run = f'while [ ! -e "{mark}" ]; do sleep 0.02; done'
        else:
            run = f"sleep {j.duration_s:g}"
        s = store.submit(
            "training", f"j{i}", _spec(f"j{i}", j, run), priority=j.priority, max_restarts=10
        )
        sid.append(s)
        index[s] = i

    lost_log: list[tuple[float, int]] = []

    def lose(i: int) -> None:
        if i >= len(sid):
            return
        w = store.get(sid[i])
        if w.state is not JobState.RUNNING:
            return
        lost_log.append((clk.t if logical else time.time(), i))
        h = provider.node_handle(str(sid[i]), w.attempt, 0)
        if h is not None and pid_of(h):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid_of(h), signal.SIGKILL)

    def step() -> bool:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the live loop did not finish the scenario in {timeout_s:g} s")
        return rec.step()

    try:
        attempts: list[Attempt] = []
        if logical:
            # the store's node times come partly from the provider (the wall clock)
            _drive_logical(sc, store, decider, clk, ends, sid, submit, lose, step, attempts)
        else:
            _drive_real(sc, store, clk, sid, submit, lose, step, step_s)
        for i, s in enumerate(sid if not logical else ()):
            by_attempt: dict[int, list[Any]] = {}
            for n in store.nodes(s):
                by_attempt.setdefault(n.attempt, []).append(n)
            for nodes in by_attempt.values():
                ran = [(n.started_at.timestamp(), n.ended_at.timestamp()) for n in nodes
                       if n.started_at and n.ended_at]  # fmt: skip
                if ran:
                    # each rank from its start to its end (ranks start one by one)
                    start, end = min(r[0] for r in ran) - t0, max(r[1] for r in ran) - t0
                    held = sum(r[1] - r[0] for r in ran)
                    attempts.append(Attempt(i, start, end, len(nodes), held))
        decisions = sorted(
            [(round(at - t0, 6), 1, _kind(d), index[d.job_id]) for at, d in decider.log
             if d.job_id in index]
            + [(round(at - t0, 6), 0, "lost", j) for at, j in lost_log],
            key=lambda x: (x[0], x[1]),
        )  # fmt: skip
        submits = [j.submit_s for j in sc.jobs]
        if not logical:  # the store's submit times, as they happened
            submits = [store.get(s).created_at.timestamp() - t0 for s in sid]
        attempts.sort(key=lambda a: (a.start_s, a.job))
        states = [store.get(s).state.value for s in sid]
        return Outcome(
            [(t, k, j) for t, _, k, j in decisions], attempts, submits,
            time.perf_counter() - t_start, {"states": states},
        )  # fmt: skip
    finally:
        provider.abandon(grace_s=0.5)  # whatever still runs (a run cut short)
        store.close()


def _kind(d: LiveDecision) -> str:
    if isinstance(d, Place):
        return "place"
    if isinstance(d, Preempt):
        return "preempt"
    return "reject"


def _settled(store: Store, sid: Sequence[int]) -> bool:
    return all(store.get(s).state not in _BUSY for s in sid)


def _drive_logical(
    sc: Scenario,
    store: Store,
    decider: _GatedDecider,
    clk: _Clock,
    ends: Path,
    sid: list[int],
    submit: Callable[[int], None],
    lose: Callable[[int], None],
    step: Callable[[], bool],
    attempts: list[Attempt],
) -> None:
    due: list[tuple[float, int, int]] = []  # (end time, store id, attempt)
    seen: dict[tuple[int, int], float] = {}  # attempts running -> since
    losses = sorted((x.at_s, x.job) for x in sc.losses)
    li = 0
    ai = 0
    n = len(sc.jobs)
    while True:
        nxt = [sc.t0 + sc.jobs[ai].submit_s] if ai < n else []
        nxt += [due[0][0]] if due else []
        nxt += [sc.t0 + losses[li][0]] if li < len(losses) else []
        if not nxt:
            break
        clk.t = min(nxt)
        t = clk.t
        decider.held = True
        ended: list[int] = []
        while due and due[0][0] <= t:
            _, s, a = heapq.heappop(due)
            w = store.get(s)
            if w.state is JobState.RUNNING and w.attempt == a:
                (ends / f"{s}-{a}").touch()
                ended.append(s)
        lost: list[tuple[int, int]] = []
        while li < len(losses) and sc.t0 + losses[li][0] <= t:
            j = losses[li][1]
            if j < len(sid) and store.get(sid[j]).state is JobState.RUNNING:
                lost.append((sid[j], store.get(sid[j]).attempt))
                lose(j)
            li += 1
        while ai < n and sc.t0 + sc.jobs[ai].submit_s <= t:
            submit(ai)
            ai += 1
        # absorb: ended jobs succeed, lost ones are requeued, nothing placed meanwhile
        while not (
            all(store.get(s).state is JobState.SUCCEEDED for s in ended)
            and all(store.get(s).attempt > a or store.get(s).state.terminal for s, a in lost)
            and _settled(store, sid)
        ):
            if not step():
                time.sleep(0.01)
        decider.held = False
        while True:
            changed = step()
            if not changed and _settled(store, sid):
                break
            if not changed:
                time.sleep(0.01)
        now_running = set()
        for s in sid:
            w = store.get(s)
            if w.state is JobState.RUNNING:
                now_running.add((s, w.attempt))
                if (s, w.attempt) not in seen:
                    seen[s, w.attempt] = t
                    heapq.heappush(due, (t + sc.jobs[sid.index(s)].duration_s, s, w.attempt))
        for key in [k for k in seen if k not in now_running]:
            i = sid.index(key[0])
            attempts.append(Attempt(i, seen.pop(key) - sc.t0, t - sc.t0, sc.jobs[i].nodes))


def _drive_real(
    sc: Scenario,
    store: Store,
    clk: _Clock,
    sid: list[int],
    submit: Callable[[int], None],
    lose: Callable[[int], None],
    step: Callable[[], bool],
    step_s: float,
) -> None:
    t0 = clk.t
    losses = sorted((x.at_s, x.job) for x in sc.losses)
    li = ai = 0
    n = len(sc.jobs)
    while True:
        now = time.time() - t0
        while ai < n and sc.jobs[ai].submit_s <= now:
            submit(ai)
            ai += 1
        while li < len(losses) and losses[li][0] <= now:
            lose(losses[li][1])
            li += 1
        step()
        if ai >= n and all(store.get(s).state.terminal for s in sid):
            break
        time.sleep(step_s)
