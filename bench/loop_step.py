"""One step of the live loop at fleet scale, on PostgreSQL (part of ``bench/control.py``).

    .venv/bin/python bench/loop_step.py [--pending 1000] [--regions 5] [--profile N]
                                        [--changed N] [--default-gc]

The fleet (``live_fleet.build_fleet_store``): 4 offerings per region of the bench cloud
(which stands in for AWS), each pool at its maximum of 500 RUNNING instances held by
200 one-node and 100 three-node RUNNING jobs (5 regions: 10,000 instances, 6,000
running jobs), plus ``pending`` PENDING jobs of 1 to 4 nodes that all hold (every pool
is full). A new live loop is built on that store (as the daemon does after a restart:
``recover``), then ``Reconciler.step`` runs: the first step writes the holds' reasons,
the next ones are the steady state the goal is about (at most 100 ms). With
``--changed N`` the bench then runs N more steps in each of which something changes, as
in a busy loop: before the step one RUNNING job ends (every node agent of its instances
reports its exit, as ``agent_report`` records a real one) and one new job is submitted;
the loop then observes the exits, finishes the job, places what fits on the freed
instances and decides the new job (``changed_*`` figures). Each of the
loop's named steps (``Reconciler.steps``: nodes, instances, jobs) is timed by wrapping
its entry in that public list; ``steady_cpu_median_s`` is the loop process's own CPU
time of a steady step (the database's is not in it). The process collects garbage as
the daemon's does (``gc_tuning.tune_gc``, which ``intercloud.control.daemon`` calls at
start; ``--default-gc`` keeps Python's default thresholds). ``python_reference_s``
(``benchlib.python_reference_s``) is the machine's speed for interpreted code at the
start of the run: figures of different days compare after scaling by it.
``--profile N`` prints cProfile's top N functions of one steady step (of one changed
step with ``--changed``).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cloud import BenchCloud
from benchlib import python_reference_s
from intercloud.agent.protocol import ReportState
from intercloud.control.reconciler import Reconciler
from intercloud.gc_tuning import tune_gc
from intercloud.store import open_store
from intercloud.store.records import AssignmentState as A
from intercloud.store.testing import postgres_unavailable, temporary_postgres_database
from live_fleet import bench_offerings, build_fleet_store, live_loop, pending_spec

__all__ = ["bench_loop_step"]


def _timed(loop: Reconciler) -> dict[str, list[float]]:
    """Wrap every named step of ``loop`` so each run's seconds are recorded by name."""
    times: dict[str, list[float]] = {name: [] for name, _ in loop.steps}

    def wrap(name: str, run: Any) -> Any:
        def timed() -> bool:
            t = time.perf_counter()
            try:
                return bool(run())
            finally:
                times[name].append(time.perf_counter() - t)

        return timed

    loop.steps[:] = [(name, wrap(name, run)) for name, run in loop.steps]
    return times


def bench_loop_step(
    pending: int = 1000,
    regions: int = 5,
    steps: int = 5,
    profile: int = 0,
    freeze: bool = False,
    changed_steps: int = 0,
    daemon_gc: bool = True,
) -> dict[str, Any]:
    """Seconds of one live-loop step over the fleet above (module docstring)."""
    before = gc.get_threshold()
    if daemon_gc:
        tune_gc()  # as the daemon process runs its loop
    try:
        return _bench(pending, regions, steps, profile, freeze, changed_steps) | {
            "daemon_gc": daemon_gc
        }
    finally:
        gc.set_threshold(*before)


def _bench(
    pending: int, regions: int, steps: int, profile: int, freeze: bool, changed_steps: int
) -> dict[str, Any]:
    why = postgres_unavailable()
    if why:
        return {"skipped": why}
    with temporary_postgres_database() as url, tempfile.TemporaryDirectory() as tmp:
        reference_s = python_reference_s()
        store = open_store(url)
        cloud = BenchCloud(bench_offerings(regions))
        t = time.perf_counter()
        made = build_fleet_store(
            store, url, cloud, Path(tmp), jobs_per=200, gangs_per=100, pending=pending
        )
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        loop, _live = live_loop(store, cloud, Path(tmp), max_instances=500)
        recover_s = time.perf_counter() - t
        if freeze:
            # what a long-running daemon could do after start: move what exists now out
            # of the cyclic collector's generations (its full passes grow with the heap)
            gc.collect()
            gc.freeze()
        times = _timed(loop)
        walls = []
        cpus = []  # this process's CPU seconds: less moved by other work on the machine
        changed = []
        for _ in range(1 + steps):
            t, c = time.perf_counter(), time.process_time()
            changed.append(loop.step())
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
        prof_text = ""
        if profile and not changed_steps:
            prof_text = _profiled(loop.step, profile)
        n_steady = 1 + steps
        rng = random.Random(7)
        gc_s = _GcClock()
        gc.callbacks.append(gc_s)
        c_gc: list[float] = []
        c_walls: list[float] = []
        c_cpus: list[float] = []
        for i in range(changed_steps + (1 if profile and changed_steps else 0)):
            _end_one_job(store, i)
            store.submit("training", f"late-{i}", pending_spec(f"late-{i}", rng))
            if profile and i == changed_steps:
                prof_text = _profiled(loop.step, profile)
                break
            t, c, g0 = time.perf_counter(), time.process_time(), gc_s.total
            loop.step()
            c_walls.append(time.perf_counter() - t)
            c_cpus.append(time.process_time() - c)
            c_gc.append(gc_s.total - g0)
        gc.callbacks.remove(gc_s)
        states = {s.value: n for s, n in _counts(store).items()}
        walk = loop.walk
        walks = {"full": walk.full_walks, "changes_only": walk.delta_walks}
        loop.close()
        store.close()
        gc.unfreeze()
    steady = walls[1:]
    return {
        **made,
        "offerings": len(cloud.sells),
        "python_reference_s": reference_s,
        "build_s": build_s,
        "recover_s": recover_s,
        "first_step_s": walls[0],
        "steady_median_s": statistics.median(steady),
        "steady_min_s": min(steady),
        "steady_cpu_median_s": statistics.median(cpus[1:]),
        "steady_steps": len(steady),
        "steady_changed": any(changed[1:]),
        "gc_frozen": freeze,
        "by_step_median_s": {
            k: statistics.median(v[1:n_steady]) for k, v in times.items() if v[1:n_steady]
        },
        "job_states_after": states,
        "job_walks": walks,  # (``jobs.walk``: steps that looked at every job / changes)
        **(
            {
                "changed_median_s": statistics.median(c_walls),
                "changed_min_s": min(c_walls),
                "changed_cpu_median_s": statistics.median(c_cpus),
                "changed_gc_median_s": statistics.median(c_gc),
                "changed_steps": len(c_walls),
                "changed_by_step_median_s": {
                    k: statistics.median(v[n_steady : n_steady + len(c_walls)])
                    for k, v in times.items()
                    if v[n_steady:]
                },
            }
            if c_walls
            else {}
        ),
        "profile": prof_text,
    }


class _GcClock:
    """A ``gc.callbacks`` entry adding up the seconds the cyclic collector runs."""

    def __init__(self) -> None:
        self.total = 0.0
        self._t = 0.0

    def __call__(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._t


def _profiled(step: Any, top: int) -> str:
    prof = cProfile.Profile()
    prof.enable()
    step()
    prof.disable()
    buf = io.StringIO()
    order = os.environ.get("PROFILE_SORT", "cumulative")  # or tottime
    pstats.Stats(prof, stream=buf).sort_stats(order).print_stats(top)
    return buf.getvalue()


def _end_one_job(store: Any, i: int) -> None:
    """The ``i``-th changed step's end of a job: a RUNNING job (one-node and gangs in
    turn) whose node agents all report their exit (code 0), as they do over the agent
    channel (``agent_report``); the loop sees it through the node bridge's poll."""
    by_job: dict[int, list[Any]] = {}
    for inst in store.instances(bound=True):
        if inst.workload_id is not None and inst.assignment_state in (A.ASSIGNED, A.STARTED):
            by_job.setdefault(inst.workload_id, []).append(inst)
    want = 3 if i % 2 else 1  # a gang of three, then a one-node job
    job = min((j for j, rows in by_job.items() if len(rows) == want), default=None)
    if job is None:
        job = min(by_job)
    for inst in by_job[job]:
        key = str((inst.assignment or {}).get("key"))
        if inst.assignment_state is A.ASSIGNED:
            store.agent_report(inst.id, key, ReportState.STARTED)
        store.agent_report(inst.id, key, ReportState.EXITED, exit_code=0)


def _counts(store: Any) -> dict[Any, int]:
    out: dict[Any, int] = {}
    for w in store.list_workloads():
        out[w.state] = out.get(w.state, 0) + 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pending", type=int, default=1000)
    ap.add_argument("--regions", type=int, default=5)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--profile", type=int, default=0)
    ap.add_argument("--freeze", action="store_true", help="gc.freeze() before the steps")
    ap.add_argument(
        "--changed",
        type=int,
        default=0,
        help="then this many steps in each of which a job ends and one is submitted "
        "(--profile then profiles one more of those)",
    )
    ap.add_argument(
        "--default-gc",
        action="store_true",
        help="Python's default GC thresholds, not the daemon's (gc_tuning.tune_gc)",
    )
    args = ap.parse_args()
    res = bench_loop_step(
        args.pending,
        args.regions,
        args.steps,
        args.profile,
        args.freeze,
        args.changed,
        daemon_gc=not args.default_gc,
    )
    prof = res.pop("profile", "")
    for k, v in res.items():
        print(f"{k}: {v}")
    if prof:
        print(prof)


if __name__ == "__main__":
    main()
