"""Failover: from a capacity refusal to the job running on the next offering (part of
``bench/control.py``).

    .venv/bin/python bench/failover.py [--runs 3]

The live loop (``live_fleet.live_loop``: the daemon's wiring, fleet scheduler with
provisioning on) over the bench cloud (``bench_cloud``: an in-memory ``AsyncProvider``
standing in for AWS, whose launches reach the cloud at the next ``observe`` and run at
once, so only the control plane is timed) with eight offerings in two regions; the
cheapest one for the job (us-east-1a p5.48xlarge) refuses every launch for capacity.
A 4-node H100:8 gang is submitted and the loop is stepped back to back. Measured from
the start of the step that observes the refusal (instance FAILED, offering cooling
down) to the end of the step after which the job is RUNNING on the next offering (the
same type in the region's other zone, us-east-1b: the fleet decider offers a planned
placement's sibling zones): seconds and steps. The store is SQLite in a
temporary folder (the daemon's default) and PostgreSQL when it answers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cloud import BenchCloud
from intercloud.control.states import JobState
from intercloud.providers.contract import FailureKind
from intercloud.store import open_store
from intercloud.store.testing import postgres_unavailable, temporary_postgres_database
from live_fleet import PROVIDER, bench_offerings, live_loop

__all__ = ["bench_failover"]

SPEC = (
    "kind: training\nname: failover\nnum_nodes: 4\n"
    f"resources: {{accelerators: H100:8, providers: [{PROVIDER}]}}\n"
    "duration: 2h\nrun: 'python train.py'\n"
)


@contextmanager
def _database(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'state.db'}"
    else:
        with temporary_postgres_database() as url:
            yield url


def _one(backend: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, _database(backend, Path(tmp)) as url:
        store = open_store(url)
        offerings = bench_offerings(2)
        first = next(o for o in offerings if o.accelerator == "H100" and o.zone.endswith("a"))
        cloud = BenchCloud(offerings)
        cloud.refuse[(first.provider, first.region, first.zone, first.instance_type)] = (
            FailureKind.CAPACITY
        )
        loop, _live = live_loop(store, cloud, Path(tmp), max_instances=8)
        job = store.submit("training", "failover", SPEC)
        t_refused = None
        steps = 0
        for _ in range(40):
            t = time.perf_counter()
            loop.step()
            if t_refused is None:
                if any(i.state == "failed" for i in store.instances()):
                    t_refused = t
                continue
            steps += 1
            w = store.get(job)
            if w.state is JobState.RUNNING:
                done = time.perf_counter()
                where = (w.placement or {}).get("zone")
                loop.close()
                store.close()
                return {"seconds": done - t_refused, "steps": steps + 1, "ran_in": where}
        loop.close()
        store.close()
        raise SystemExit(f"failover: job not running after 40 steps ({store.get(job).reason})")


def bench_failover(runs: int = 3) -> dict[str, Any]:
    out: dict[str, Any] = {}
    backends = ["sqlite"]
    why = postgres_unavailable()
    if why is None:
        backends.append("postgresql")
    else:
        out["postgresql"] = {"skipped": why}
    for backend in backends:
        got = [_one(backend) for _ in range(runs)]
        out[backend] = {
            "median_s": statistics.median(g["seconds"] for g in got),
            "max_s": max(g["seconds"] for g in got),
            "steps": sorted({g["steps"] for g in got}),
            "ran_in": sorted({str(g["ran_in"]) for g in got}),
            "runs": runs,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    print(bench_failover(ap.parse_args().runs))


if __name__ == "__main__":
    main()
