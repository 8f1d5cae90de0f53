"""One step of the live loop at fleet scale, on PostgreSQL (part of ``bench/control.py``).

    .venv/bin/python bench/loop_step.py [--pending 1000] [--regions 5] [--profile N]

The fleet (``live_fleet.build_fleet_store``): 4 offerings per region of the bench cloud
(which stands in for AWS), each pool at its maximum of 500 RUNNING instances held by
200 one-node and 100 three-node RUNNING jobs (5 regions: 10,000 instances, 6,000
running jobs), plus ``pending`` PENDING jobs of 1 to 4 nodes that all hold (every pool
is full). A new live loop is built on that store (as the daemon does after a restart:
``recover``), then ``Reconciler.step`` runs: the first step writes the holds' reasons,
the next ones are the steady state the goal is about (at most 100 ms). Each of the
loop's named steps (``Reconciler.steps``: nodes, instances, jobs) is timed by wrapping
its entry in that public list; ``steady_cpu_median_s`` is the loop process's own CPU
time of a steady step (the database's is not in it). ``--profile N`` prints cProfile's
top N functions of one steady step.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cloud import BenchCloud
from intercloud.control.reconciler import Reconciler
from intercloud.store import open_store
from intercloud.store.testing import postgres_unavailable, temporary_postgres_database
from live_fleet import bench_offerings, build_fleet_store, live_loop

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
    pending: int = 1000, regions: int = 5, steps: int = 5, profile: int = 0, freeze: bool = False
) -> dict[str, Any]:
    """Seconds of one live-loop step over the fleet above (module docstring)."""
    why = postgres_unavailable()
    if why:
        return {"skipped": why}
    with temporary_postgres_database() as url, tempfile.TemporaryDirectory() as tmp:
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
        if profile:
            prof = cProfile.Profile()
            prof.enable()
            loop.step()
            prof.disable()
            buf = io.StringIO()
            pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(profile)
            prof_text = buf.getvalue()
        states = {s.value: n for s, n in _counts(store).items()}
        loop.close()
        store.close()
        gc.unfreeze()
    steady = walls[1:]
    return {
        **made,
        "offerings": len(cloud.sells),
        "build_s": build_s,
        "recover_s": recover_s,
        "first_step_s": walls[0],
        "steady_median_s": statistics.median(steady),
        "steady_min_s": min(steady),
        "steady_cpu_median_s": statistics.median(cpus[1:]),
        "steady_steps": len(steady),
        "steady_changed": any(changed[1:]),
        "gc_frozen": freeze,
        "by_step_median_s": {k: statistics.median(v[1:]) for k, v in times.items() if v[1:]},
        "job_states_after": states,
        "profile": prof_text,
    }


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
    args = ap.parse_args()
    res = bench_loop_step(args.pending, args.regions, args.steps, args.profile, args.freeze)
    prof = res.pop("profile", "")
    for k, v in res.items():
        print(f"{k}: {v}")
    if prof:
        print(prof)


if __name__ == "__main__":
    main()
