"""Fidelity benchmark: short real jobs through the live loop, then the same trace in the twin.

    .venv/bin/python bench/fidelity.py [--jobs 36] [--seed 1] [--json] [--no-results]

The scenario (``twin.fidelity``): an 8-node CPU cluster (the local provider's site made
from the same fleet description the twin reads; a node is a CPU slot), ``--jobs`` jobs of
2-8 s and 1-4 nodes arriving over about 30 s at an offered load of about 2 (more work
than capacity), every sixth job at a higher priority (preemptions), one 6-node gang of
12 s, and the gang's first node killed 4 s after its submission (a lost node: its
supervisor SIGKILLed). Live: the real ``Reconciler`` with the fleet decider on a
``LocalProvider``, wall clock, jobs that ``sleep`` their duration, stepped every
``STEP_S``; SQLite store.

Twin: ``run_twin`` with its three constants fixed before the trace runs, from a
calibration on the same machine just before: 24 half-second jobs that each take the
whole cluster, all queued at once, through the same live loop. The mean gap ``g``
between one's end and the next one's start is the loop's hand-off latency with a queue
(a step's cost grows with the jobs pending), and ``e``, the mean run time of a rank less
its half second, the cost of starting and ending a process. The twin decides ``g`` after
each change it has not yet decided on (the loop's hand-off latency, ``handoff_s``), a job
runs ``e`` longer than its duration, and a restarted job pays ``g`` more (its lost node
noticed and killed before the requeue). The older model, scheduling every ``2 g`` (a
periodic loop's mean wait is half its period), is reported beside it.
Nothing is fitted to the trace's own run. The twin gets the trace as the live run
submitted it (the driver submits between steps, so a job may enter the store late by
up to a step) and the node loss when it happened. The twin with no latency at all
(scheduling at once, no restart overhead) is reported too.

The same scenario then runs on the logical clock (``run_live(clock="logical")``, no
timing) against the twin scheduling at once, and whether their decisions are the same
is reported.

Reported: makespan, mean JCT and node-hours (here CPU-slot hours: the nodes the jobs
ran on, failed attempts included; live, each rank from its start to its end) of both,
and their relative differences (goal: within 5%); the order in which jobs first
started, compared. Appended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import append_results, machine
from intercloud.store import open_store
from intercloud.twin.failures import NodeLoss
from intercloud.twin.fidelity import Outcome, Scenario, ScenarioJob, run_live, run_twin

STEP_S = 0.05  # the live loop's pause between steps
NODES = 8

FLEET = f"""
name: fidelity-bench
providers:
  - name: local
    regions:
      - name: local
        zones:
          - name: local-a
            pools:
              - {{instance_type: local-cpu, pricing: committed, nodes: {NODES},
                 usd_per_node_hour: 1, shape: {{gpus_per_node: 0, vcpus: 1, memory_gib: 1}}}}
"""


def scenario(n: int, seed: int) -> Scenario:
    rng = random.Random(seed)
    jobs: list[ScenarioJob] = []
    span = 30.0
    gang_at = n // 3
    for i in range(n):
        submit = round(span * i / n, 2)
        if i == gang_at:
            jobs.append(ScenarioJob(submit, 12.0, 6, priority=5))
            continue
        dur = round(rng.uniform(2.0, 8.0), 1)
        nodes = rng.choice([1, 1, 2, 2, 3, 4])
        jobs.append(ScenarioJob(submit, dur, nodes, priority=5 if i % 6 == 5 else 0))
    loss = NodeLoss(job=gang_at, at_s=jobs[gang_at].submit_s + 4.0)
    return Scenario.from_fleet_text(FLEET, jobs, [loss])


def offered_load(sc: Scenario) -> float:
    work = sum(j.duration_s * j.nodes for j in sc.jobs)
    span = max(j.submit_s for j in sc.jobs) - min(j.submit_s for j in sc.jobs)
    return work / (NODES * span)


def first_starts(o: Outcome) -> list[int]:
    first: dict[int, float] = {}
    for a in o.attempts:
        first[a.job] = min(first.get(a.job, a.start_s), a.start_s)
    return [j for j, _ in sorted(first.items(), key=lambda x: (x[1], x[0]))]


def calibrate(d: Path) -> tuple[float, float]:
    """The live loop's mean hand-off latency and a rank's extra run time (s), from 24
    whole-cluster 0.5-s jobs queued at once."""
    sc = Scenario.from_fleet_text(FLEET, [ScenarioJob(0.0, 0.5, NODES)] * 24)
    url = f"sqlite:///{d}/calibration.db"
    o = run_live(sc, lambda c: open_store(url, clock=c), d / "cal", clock="real", step_s=STEP_S)
    runs = sorted(o.attempts, key=lambda a: a.start_s)
    gaps = [b.start_s - a.end_s for a, b in itertools.pairwise(runs)]
    extra = [(a.node_s or 0.0) / a.nodes - 0.5 for a in runs]
    return sum(gaps) / len(gaps), max(0.0, sum(extra) / len(extra))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=36)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-results", action="store_true")
    args = ap.parse_args()
    sc = scenario(args.jobs, args.seed)
    with tempfile.TemporaryDirectory() as d:
        gap, extra = calibrate(Path(d))
        tick_s, restart_s = round(2 * gap, 3), round(gap, 3)
        url = f"sqlite:///{d}/store.db"
        live = run_live(
            sc, lambda c: open_store(url, clock=c), Path(d) / "local", clock="real", step_s=STEP_S
        )
        # the same scenario on the logical clock: decisions only, no timing
        url2 = f"sqlite:///{d}/logical.db"
        logical = run_live(sc, lambda c: open_store(url2, clock=c), Path(d) / "logical")
    same = logical.decisions == run_twin(sc).decisions
    # the trace as the live run submitted it, the loss when it happened
    jobs = [
        replace(j, submit_s=round(t, 3), duration_s=round(j.duration_s + extra, 3))
        for j, t in zip(sc.jobs, live.submit_s, strict=True)
    ]
    losses = [NodeLoss(j, round(t, 3)) for t, k, j in live.decisions if k == "lost"]
    as_run = replace(sc, jobs=tuple(jobs), losses=tuple(losses))
    twin = run_twin(as_run, handoff_s=round(gap, 3), restart_overhead_s=restart_s)
    periodic = run_twin(as_run, tick_s=tick_s, restart_overhead_s=restart_s)
    ideal = run_twin(replace(as_run, jobs=tuple(
        replace(j, duration_s=o.duration_s) for j, o in zip(as_run.jobs, sc.jobs, strict=True)
    )))  # fmt: skip

    def diff(a: float, b: float) -> float:
        return (b - a) / a

    rows = {
        f: (getattr(live, f), getattr(twin, f), getattr(periodic, f), getattr(ideal, f))
        for f in ("makespan_s", "jct_mean_s", "node_hours")
    }
    lost = [k for _, k, _ in live.decisions].count("lost")
    order_live, order_twin = first_starts(live), first_starts(twin)
    same_prefix = next(
        (i for i, (a, b) in enumerate(zip(order_live, order_twin, strict=False)) if a != b),
        min(len(order_live), len(order_twin)),
    )
    result = {
        "jobs": len(sc.jobs),
        "offered_load": round(offered_load(sc), 3),
        "handoff_s": round(gap, 3),
        "twin_tick_s": tick_s,
        "twin_restart_s": restart_s,
        "twin_run_extra_s": round(extra, 3),
        "live_wall_s": round(live.wall_s, 1),
        "live_states": sorted(set(live.extra["states"])),
        "live_lost_nodes": lost,
        "live_preemptions": [k for _, k, _ in live.decisions].count("preempt"),
        "twin_preemptions": [k for _, k, _ in twin.decisions].count("preempt"),
        "twin_periodic_preemptions": [k for _, k, _ in periodic.decisions].count("preempt"),
        "same_start_order_prefix": same_prefix,
        "logical_clock_same_decisions": same,
        "logical_clock_decisions": len(logical.decisions),
        **{
            k: {
                "live": round(a, 3),
                "twin": round(b, 3),
                "diff": round(diff(a, b), 4),
                "twin_periodic": round(c, 3),
                "diff_periodic": round(diff(a, c), 4),
                "twin_no_latency": round(z, 3),
                "diff_no_latency": round(diff(a, z), 4),
            }
            for k, (a, b, c, z) in rows.items()
        },
    }
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")
    if args.no_results:
        return
    m = machine()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    table = "\n".join(
        f"| {k} | {a:,.3f} | {b:,.3f} | {diff(a, b):+.1%} | {c:,.3f} | {diff(a, c):+.1%} "
        f"| {z:,.3f} | {diff(a, z):+.1%} |"
        for k, (a, b, c, z) in rows.items()
    )
    append_results(
        f"""## fidelity — {when}

Machine: {m["arch"]}, {m["cpu"]}, {m["cores"]} cores, Python {m["python"]}, git {m["git"]}, \
load average at start {m["load"]}.

`bench/fidelity.py --jobs {args.jobs} --seed {args.seed}`: {len(sc.jobs)} real jobs (2-8 s, \
1-4 nodes, one 6-node 12 s gang at priority 5, every sixth job at priority 5) on an \
{NODES}-node local CPU cluster at offered load {result["offered_load"]}, one node of the \
gang killed (lost nodes seen live: {lost}); the live loop (wall clock, step pause \
{STEP_S} s, SQLite) took {result["live_wall_s"]} s. Twin constants fixed before the run \
from the calibration (hand-off latency {gap:.3f} s, run time of a rank {extra:.3f} s over \
its duration): decisions {gap:.3f} s after a change (hand-off), restart overhead \
{restart_s} s, durations +{extra:.3f} s; the older periodic model schedules every {tick_s} s. \
Preemptions live {result["live_preemptions"]}, twin {result["twin_preemptions"]} \
(periodic {result["twin_periodic_preemptions"]}); the first \
{same_prefix} of {len(sc.jobs)} jobs started in the same order. On the logical clock the \
live loop and the twin (scheduling at once) made {"the same" if same else "different"} \
{len(logical.decisions)} decisions. Node-hours are CPU-slot hours.

| figure | live | twin (hand-off) | vs live | twin (periodic) | vs live | no latency | vs live |
|---|---|---|---|---|---|---|---|
{table}
"""
    )


if __name__ == "__main__":
    t = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t:.1f} s)", file=sys.stderr)
