"""API load: durable submissions per second through ``intercloud server start`` on
PostgreSQL, from a second process over loopback.

    .venv/bin/python bench/api.py [--quick] [--seconds 60] [--rate 1000] [--workers 2]

A temporary home and PostgreSQL database; ``intercloud admin bootstrap``, then
``intercloud server start --workers N`` (its control loop started by the first
submission, as for a user), a tenant ``bench`` and a member token. A load process
(this script, ``--load``) keeps ``--connections`` keep-alive HTTP/1.1 connections busy
with ``POST /v1/workloads`` (a small YAML spec), paced to at most ``--rate`` requests a
second, for ``--seconds``; each answer's latency is taken from the request's first byte
sent to the answer's last byte read. Afterwards every acknowledged id (201) is looked up
in the store: ``lost`` counts those missing. Goal: >= 1,000/s sustained, p99 <= 50 ms,
0 lost. ``--quick``: 10 s. Appends to bench/RESULTS.md unless ``--no-append``.

The load process speaks HTTP itself (asyncio streams, no client library) so that the
client's own cost stays small next to the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import append_results, machine

SPEC = (
    b"kind: training\nname: load\nresources: {cpus: 1}\n"
    b"run: sleep 1\n"  # the loop runs them one at a time on a 1-CPU site
)


# -- the load process -------------------------------------------------------------------
async def _one_connection(
    host: str,
    port: int,
    token: str,
    stop_at: float,
    pace: asyncio.Queue[None],
    out: dict[str, Any],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    head = (
        f"POST /v1/workloads HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/yaml\r\n"
        f"Content-Length: {len(SPEC)}\r\n\r\n"
    ).encode()
    request = head + SPEC
    try:
        while time.monotonic() < stop_at:
            await pace.get()
            t0 = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            out["latency"].append(time.perf_counter() - t0)
            status = int(status_line.split()[1]) if status_line else 0
            if status == 201:
                out["ids"].append(json.loads(body)["id"])
            else:
                out["errors"][str(status)] = out["errors"].get(str(status), 0) + 1
    finally:
        writer.close()


async def _pacer(rate: float, stop_at: float, pace: asyncio.Queue[None]) -> None:
    """Releases ``rate`` requests a second (a token bucket refilled every millisecond)."""
    start = time.monotonic()
    released = 0
    while (now := time.monotonic()) < stop_at:
        due = int((now - start) * rate)
        for _ in range(due - released):
            if pace.full():  # every connection busy: the server is slower than ``rate``
                break
            pace.put_nowait(None)
        released = due
        await asyncio.sleep(0.001)


async def _load(url: str, token: str, seconds: float, rate: float, connections: int) -> None:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    out: dict[str, Any] = {"latency": [], "ids": [], "errors": {}}
    pace: asyncio.Queue[None] = asyncio.Queue(maxsize=connections)
    start = time.monotonic()
    stop_at = start + seconds
    tasks = [
        asyncio.create_task(_one_connection(host, int(port), token, stop_at, pace, out))
        for _ in range(connections)
    ]
    await _pacer(rate, stop_at, pace)
    # let the requests in flight finish (no new ones: the pacer has stopped)
    while not pace.full():
        pace.put_nowait(None)
    await asyncio.gather(*tasks, return_exceptions=True)
    out["elapsed_s"] = time.monotonic() - start
    out["cpu_s"] = time.process_time()
    json.dump(out, sys.stdout)


# -- the driver -------------------------------------------------------------------------
def _env(home: Path, db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCLOUD_")}
    env.update(
        INTERCLOUD_HOME=str(home),
        INTERCLOUD_DB_URL=db_url,
        INTERCLOUD_LOCAL_SITES="local/local,cpus=1",
    )
    return env


def _ic(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "intercloud", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise SystemExit(f"intercloud {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited {proc.returncode}")
        try:
            if httpx.get(f"{url}/openapi.json", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not come up")


def _cpu_s(pid: int) -> tuple[dict[str, float], dict[int, float]]:
    """CPU seconds so far of the server (its worker processes included) and of its
    control loop; and of each PostgreSQL process on the machine, by pid."""
    import psutil

    def used(p: psutil.Process) -> float:
        try:
            t = p.cpu_times()
        except psutil.Error:
            return 0.0
        return float(t.user + t.system)

    server = psutil.Process(pid)
    total = used(server)
    daemon = 0.0
    for c in server.children(recursive=True):
        try:
            is_daemon = "intercloud.control.daemon" in c.cmdline()
        except psutil.Error:
            continue
        if is_daemon:
            daemon += used(c)
        else:
            total += used(c)
    pg = {p.pid: used(p) for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"}
    return {"server": total, "daemon": daemon}, pg


def _pg_used(before: dict[int, float], after: dict[int, float]) -> float:
    """PostgreSQL CPU seconds between two samples: processes seen at the end, less what
    each had used at the start (a backend that exited meanwhile, another user's, would
    otherwise count negative)."""
    return sum(used - before.get(pid, 0.0) for pid, used in after.items())


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _missing(db_url: str, ids: list[int]) -> int:
    import sqlalchemy as sa

    from intercloud.store.engine import normalize_url

    engine = sa.create_engine(normalize_url(db_url))
    try:
        with engine.connect() as conn:
            found = {
                r[0]
                for r in conn.execute(
                    sa.text("SELECT id FROM workloads WHERE id = ANY(:ids)"), {"ids": ids}
                )
            }
    finally:
        engine.dispose()
    return len(set(ids) - found)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from intercloud.store.testing import temporary_postgres_database

    with tempfile.TemporaryDirectory() as tmp, temporary_postgres_database() as db_url:
        home = Path(tmp) / "home"
        env = _env(home, db_url)
        admin = _ic(env, "admin", "bootstrap")
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        serve = ["-m", "intercloud", "server", "start", "--port", str(port), "--workers",
                 str(args.workers), "--rate", "1000000", "--burst", "1000000"]  # fmt: skip
        if args.profile:  # one process under pyinstrument, its report written on exit
            serve = ["-m", "pyinstrument", "-o", str(args.profile), "-r", "text", *serve]
        server = subprocess.Popen([sys.executable, *serve], env=env, stdout=subprocess.DEVNULL)
        try:
            _wait_up(url, server)
            auth = {"Authorization": f"Bearer {admin}"}
            with httpx.Client(base_url=url, headers=auth, timeout=60) as c:
                c.post("/v1/tenants", json={"name": "bench"}).raise_for_status()
                made = c.post("/v1/tokens", json={"tenant": "bench", "role": "member"})
                made.raise_for_status()
                token = made.json()["secret"]
                # warm every worker (and start the control loop) before timing
                for _ in range(4 * args.workers):
                    c.post(
                        "/v1/workloads",
                        content=SPEC,
                        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/yaml"},
                    ).raise_for_status()
            cpu_before, pg_before = _cpu_s(server.pid)
            load = subprocess.run(
                [sys.executable, __file__, "--load", url, token, str(args.seconds),
                 str(args.rate), str(args.connections)],
                stdout=subprocess.PIPE,
                text=True,
                check=True,
            )  # fmt: skip
            out = json.loads(load.stdout)
            cpu_after, pg_after = _cpu_s(server.pid)
            server_cpu = {k: v - cpu_before[k] for k, v in cpu_after.items()}
            server_cpu["postgres"] = _pg_used(pg_before, pg_after)
            lost = _missing(db_url, out["ids"])
        finally:
            server.send_signal(signal.SIGINT)  # uvicorn's graceful stop
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            subprocess.run(
                [sys.executable, "-m", "intercloud", "daemon", "stop"],
                env=env,
                capture_output=True,
                check=False,
                timeout=60,
            )
    lat = sorted(out["latency"])
    acked = len(out["ids"])
    return {
        "seconds": args.seconds,
        "target_rate": args.rate,
        "workers": args.workers,
        "connections": args.connections,
        "acked": acked,
        "rate": acked / out["elapsed_s"],
        "p50_ms": 1000 * _percentile(lat, 0.50),
        "p99_ms": 1000 * _percentile(lat, 0.99),
        "max_ms": 1000 * (lat[-1] if lat else float("nan")),
        "errors": out["errors"],
        "lost": lost,
        # CPU ms per acknowledged submission: server processes, the control loop the server
        # started, PostgreSQL, load process
        "cpu_ms": {
            "server": 1000 * server_cpu["server"] / max(acked, 1),
            "daemon": 1000 * server_cpu["daemon"] / max(acked, 1),
            "postgres": 1000 * server_cpu["postgres"] / max(acked, 1),
            "client": 1000 * out["cpu_s"] / max(acked, 1),
        },
    }


def render(r: dict[str, Any], quick: bool) -> str:
    m = machine()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    cpu = r["cpu_ms"]
    errors = ", ".join(f"{k}: {v}" for k, v in sorted(r["errors"].items())) or "none"
    return (
        f"## api — {when}\n\n"
        f"Machine: {m['arch']}, {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
        f"git {m['git']}, load average at start {m['load']}{' (quick)' if quick else ''}.\n\n"
        f"`POST /v1/workloads` from a second process over loopback, "
        f"`intercloud server start --workers {r['workers']}` on PostgreSQL, "
        f"{r['connections']} keep-alive connections paced to {r['target_rate']:g}/s "
        f"for {r['seconds']:g} s:\n\n"
        "| acknowledged | per s | p50 ms | p99 ms | max ms | errors | lost "
        "| CPU ms each: server, its control loop, PostgreSQL, client |\n"
        "|---|---|---|---|---|---|---|---|\n"
        f"| {r['acked']} | {r['rate']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} "
        f"| {r['max_ms']:.0f} | {errors} | {r['lost']} "
        f"| {cpu['server']:.2f}, {cpu['daemon']:.2f}, {cpu['postgres']:.2f}, "
        f"{cpu['client']:.2f} |\n"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        url, token, seconds, rate, conns = sys.argv[2:7]
        asyncio.run(_load(url, token, float(seconds), float(rate), int(conns)))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="10 s instead of 60")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--rate", type=float, default=1000.0, help="requests/s at most")
    p.add_argument("--workers", type=int, default=2, help="server processes")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--no-append", action="store_true")
    p.add_argument(
        "--profile",
        type=Path,
        help="run the server (--workers 1) under pyinstrument, its text report to this file",
    )
    args = p.parse_args()
    if args.quick:
        args.seconds = 10.0
    if args.profile:
        args.workers, args.no_append = 1, True
    result = run(args)
    text = render(result, args.quick)
    print(text)
    if not args.no_append:
        append_results(text)


if __name__ == "__main__":
    main()
