"""Control-plane benchmark: durable submissions per second, and `run` to first process.

    .venv/bin/python bench/control.py [--quick] [--json] [--no-results]

1. Durable submissions/s into the store, SQLite (WAL, synchronous=FULL, a temp file) and
   PostgreSQL (a throwaway database on 127.0.0.1:5432; skipped with a line if absent):
   (a) ``Store.submit`` alone — one committed transaction per job; (b) the SDK's
   ``Client.submit`` — spec validation against the catalog, a plan over the enabled
   providers, then the committed insert (the daemon is not started).
2. Latency from ``intercloud run SPEC --detach`` (a new process) to the moment the first
   node process of the job starts (the node writes ``time.time()`` first thing), on the
   local provider: cold (no daemon running: includes starting it) and warm (daemon up).
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
from intercloud.sdk import Client
from intercloud.store import open_store
from intercloud.store.testing import postgres_unavailable, temporary_postgres_database

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


def render(res: dict[str, Any]) -> str:
    m = res["machine"]
    lines = [
        f"## control — {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        f"Machine: {m['arch']}, {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
        f"git {m['git']}, load average at start {m['load']}"
        + (" (quick)." if res["quick"] else "."),
        "",
        f"Durable submissions ({res['n']} each; every one committed before it returns):",
        "",
        "| backend | path | submissions/s |",
        "|---|---|---|",
    ]
    for r in res["submissions"]:
        rate = f"{r['per_s']:,.0f}" if "per_s" in r else f"skipped: {r['skipped']}"
        lines.append(f"| {r['backend']} | {r['path']} | {rate} |")
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
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-results", action="store_true")
    args = ap.parse_args()
    n = 200 if args.quick else 1000
    res = {
        "machine": machine(),
        "quick": args.quick,
        "n": n,
        "submissions": bench_submissions(n),
        "first_start": first_start_latency(3 if args.quick else 7),
    }
    text = render(res)
    print(json.dumps(res, indent=1) if args.json else text)
    if not args.no_results:
        append_results(text)


if __name__ == "__main__":
    main()
