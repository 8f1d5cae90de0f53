"""Control-plane benchmark: submissions, `run` to first process, a 4-node gang on local and
AWS (moto), one live-loop step at fleet scale, failover.

    .venv/bin/python bench/control.py [--quick] [--json] [--no-results] [--only PART ...]

PART: ``submit``, ``first``, ``gang``, ``loop``, ``failover`` (default: all).

1. Durable submissions/s into the store, SQLite (WAL, synchronous=FULL, a temp file) and
   PostgreSQL (a throwaway database on 127.0.0.1:5432; skipped with a line if absent):
   (a) ``Store.submit`` alone — one committed transaction per job; (b) the SDK's
   ``Client.submit`` — spec validation against the catalog, a plan over the enabled
   providers, then the committed insert (the daemon is not started).
2. Latency from ``intercloud run SPEC --detach`` (a new process) to the moment the first
   node process of the job starts (the node writes ``time.time()`` first thing), on the
   local provider: cold (no daemon running: includes starting it) and warm (daemon up).
3. Submit to all nodes running, a 4-node gang, on ``local`` and on AWS (moto's EC2
   server, the VMs booted by the tests' harness), same run (``gang_start``).
4. One step of the live loop with 1,000 pending jobs and 10,000 instances (6,000
   running jobs) on PostgreSQL (``loop_step``): goal at most 100 ms.
5. Failover: from a capacity refusal to the job running on the next offering, on the
   bench cloud (an in-memory provider standing in for AWS; ``failover``).
Figures are printed and appended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import REPO, append_results, machine
from failover import bench_failover
from gang_start import bench_gang_start
from intercloud.sdk import Client
from intercloud.store import open_store
from intercloud.store.testing import postgres_unavailable, temporary_postgres_database
from loop_step import bench_loop_step

SPEC = """kind: batch
name: bench-{i}
count: 1
resources: {{cpus: 1+, providers: [local]}}
run: 'true'
"""


def submit_rate(url: str, n: int, via_sdk: bool, home: Path) -> float:
    """Committed submissions per second (each returns only after its commit)."""
    if via_sdk:
        client = Client(home=home, db_url=url, autostart=False)
        client.submit("warmup.yaml", text=SPEC.format(i="warmup"))  # catalog, imports
        t = time.perf_counter()
        for i in range(n):
            client.submit(f"bench-{i}.yaml", text=SPEC.format(i=i))
        dt = time.perf_counter() - t
        client.close()
        return n / dt
    store = open_store(url)
    text = SPEC.format(i=0)
    t = time.perf_counter()
    for i in range(n):
        store.submit("batch", f"bench-{i}", text)
    dt = time.perf_counter() - t
    store.close()
    return n / dt


def bench_submissions(n: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        for via_sdk in (False, True):
            url = f"sqlite:///{home}/bench-{via_sdk}.db"
            rows.append(
                {
                    "backend": "sqlite",
                    "path": "sdk" if via_sdk else "store",
                    "per_s": submit_rate(url, n, via_sdk, home),
                }
            )
        why = postgres_unavailable()
        if why:
            rows.append({"backend": "postgresql", "path": "-", "skipped": why})
            return rows
        for via_sdk in (False, True):
            with temporary_postgres_database() as url:
                rows.append(
                    {
                        "backend": "postgresql",
                        "path": "sdk" if via_sdk else "store",
                        "per_s": submit_rate(url, n, via_sdk, home),
                    }
                )
    return rows


def first_start_latency(runs: int) -> dict[str, Any]:
    """Seconds from spawning `intercloud run --detach` to the first node's first line."""
    out: dict[str, list[float]] = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        stamps = Path(tmp) / "stamps"
        stamps.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCLOUD_")}
        env.update(INTERCLOUD_HOME=str(home), INTERCLOUD_DAEMON_IDLE_EXIT="60")
        for i in range(runs):
            for phase in ("cold", "warm"):
                if phase == "cold":
                    subprocess.run(
                        [sys.executable, "-m", "intercloud", "daemon", "stop"],
                        env=env,
                        capture_output=True,
                        check=False,
                    )
                stamp = stamps / f"{phase}-{i}"
                spec = Path(tmp) / f"{phase}-{i}.yaml"
                spec.write_text(
                    "kind: training\nname: first-start\nresources: {cpus: 1+, providers: [local]}\n"
                    'run: python -c "import time; '
                    f"open('{stamp}', 'w').write(repr(time.time()))\"\n"
                )
                t0 = time.time()
                subprocess.run(
                    [sys.executable, "-m", "intercloud", "run", str(spec), "--detach"],
                    env=env,
                    capture_output=True,
                    check=True,
                    cwd=REPO,
                )
                deadline = time.monotonic() + 60
                while not stamp.exists() or not stamp.read_text():
                    if time.monotonic() > deadline:
                        raise SystemExit(f"node of {spec.name} never started")
                    time.sleep(0.005)
                out[phase].append(float(stamp.read_text()) - t0)
        subprocess.run(
            [sys.executable, "-m", "intercloud", "daemon", "stop"],
            env=env,
            capture_output=True,
            check=False,
        )
    return {
        k: {"median_s": statistics.median(v), "max_s": max(v), "runs": len(v)}
        for k, v in out.items()
    }


PARTS = ("submit", "first", "gang", "loop", "failover")


def render(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [
        f"## control — {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        f"Machine: {m['arch']}, {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
        f"git {m['git']}, load average at start {m['load']}"
        + (" (quick)." if res["quick"] else "."),
    ]
    if "submissions" in res:
        lines += [
            "",
            f"Durable submissions ({res['n']} each; every one committed before it returns):",
            "",
            "| backend | path | submissions/s |",
            "|---|---|---|",
        ]
        for r in res["submissions"]:
            rate = f"{r['per_s']:,.0f}" if "per_s" in r else f"skipped: {r['skipped']}"
            lines.append(f"| {r['backend']} | {r['path']} | {rate} |")
    if "first_start" in res:
        lat = res["first_start"]
        lines += [
            "",
            "`intercloud run --detach` to the first node process starting (local provider):",
            "",
            "| daemon | median s | max s | runs |",
            "|---|---|---|---|",
        ]
        for phase in ("cold", "warm"):
            v = lat[phase]
            lines.append(f"| {phase} | {v['median_s']:.3f} | {v['max_s']:.3f} | {v['runs']} |")
    if "gang" in res:
        g = res["gang"]
        lines += [
            "",
            "`intercloud run --detach` to all 4 ranks of a gang running, local then AWS in one "
            "daemon (the first local run starts it; AWS = moto, each VM booting its own "
            "user-data and enrolling its agent; the first AWS run launches the 4 instances, "
            "later ones reuse them idle):",
            "",
            "| provider | first run s | later runs median s |",
            "|---|---|---|",
        ]
        for name in ("local", "aws"):
            v = g[name]
            later = "-" if v["then_median_s"] is None else f"{v['then_median_s']:.2f}"
            lines.append(f"| {name} | {v['first_s']:.2f} | {later} |")
    if "loop" in res:
        v = res["loop"]
        if "skipped" in v:
            lines += ["", f"Live-loop step at fleet scale: skipped: {v['skipped']}"]
        else:
            by = ", ".join(f"{k} {t * 1000:.0f}" for k, t in v["by_step_median_s"].items())
            lines += [
                "",
                f"One live-loop step, PostgreSQL: {v['instances']:,} RUNNING instances in "
                f"{v['offerings']} pools at their max, {v['running_jobs']:,} running jobs, "
                f"{v['pending_jobs']:,} pending (all holding). Fleet built in "
                f"{v['build_s']:.1f} s, loop recovered in {v['recover_s']:.1f} s.",
                "",
                "| first step s (writes 1,000 holds) | steady step median ms | min ms | "
                "by step (median ms) | steps |",
                "|---|---|---|---|---|",
                f"| {v['first_step_s']:.2f} | {v['steady_median_s'] * 1000:.0f} | "
                f"{v['steady_min_s'] * 1000:.0f} | {by} | {v['steady_steps']} |",
            ]
    if "failover" in res:
        lines += [
            "",
            "Failover, capacity refused on the cheapest offering -> 4-node gang RUNNING on the "
            "next one (bench cloud, launches instant; loop stepped back to back):",
            "",
            "| store | median s | max s | steps | ran in | runs |",
            "|---|---|---|---|---|---|",
        ]
        for name, v in res["failover"].items():
            if "skipped" in v:
                lines.append(f"| {name} | skipped: {v['skipped']} | | | | |")
                continue
            lines.append(
                f"| {name} | {v['median_s']:.3f} | {v['max_s']:.3f} | "
                f"{', '.join(map(str, v['steps']))} | {', '.join(v['ran_in'])} | {v['runs']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-results", action="store_true")
    ap.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    args = ap.parse_args()
    n = 200 if args.quick else 1000
    res: dict[str, Any] = {"machine": machine(), "quick": args.quick, "n": n}
    if "submit" in args.only:
        res["submissions"] = bench_submissions(n)
    if "first" in args.only:
        res["first_start"] = first_start_latency(3 if args.quick else 7)
    if "gang" in args.only:
        res["gang"] = bench_gang_start(2 if args.quick else 3)
    if "loop" in args.only:
        loop = bench_loop_step(steps=3 if args.quick else 5)
        loop.pop("profile", None)
        res["loop"] = loop
    if "failover" in args.only:
        res["failover"] = bench_failover(2 if args.quick else 5)
    text = render(res)
    print(json.dumps(res, indent=1) if args.json else text)
    if not args.no_results:
        append_results(text)


if __name__ == "__main__":
    main()
