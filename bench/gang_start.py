"""Submit to all nodes running, a 4-node gang, on ``local`` and on AWS (moto), same run
(part of ``bench/control.py``).

    .venv/bin/python bench/gang_start.py [--runs 2]

Each run spawns ``intercloud run SPEC --detach`` (a new process; the very first run
starts the daemon, the others find it up) and waits until every one of the gang's 4
nodes has written ``time.time()`` to a stamp file, first thing; the figure is the last
stamp minus the spawn time. AWS: moto's EC2 server on loopback (started here),
``config.yaml`` enabling ``aws`` against it, and the tests' VM-boot harness
(``tests/providers/aws/vm_booter.py``) booting each instance's own user-data on this
machine, so its node agent enrols with the daemon and runs its rank: the real path of
CLI, daemon, fleet scheduler (provisioning 4 instances), instance step, bridge, agent
server and agent. The first AWS run launches the instances (cold: boot and enrolment
included); the next ones reuse the idle ones (warm).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchlib import REPO

sys.path.insert(0, str(REPO / "tests" / "providers" / "aws"))

__all__ = ["bench_gang_start"]

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's EC2 server on a free loopback port, stopped on exit."""
    server = Path(sys.executable).parent / "moto_server"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("moto_server did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _ic(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intercloud", *args],
        env=env, capture_output=True, text=True, check=False, timeout=180, cwd=REPO,
    )  # fmt: skip


def _spec(path: Path, provider: str, stamps: Path, cpus: str) -> None:
    path.write_text(
        f"kind: training\nname: gang-{provider}\nnum_nodes: 4\n"
        f"resources: {{cpus: '{cpus}', providers: [{provider}]}}\n"
        'run: python -c "import os, time; '
        f"open(os.path.join('{stamps}', 'rank-' + os.environ['RANK']), 'w')"
        '.write(repr(time.time())); time.sleep(2)"\n'
    )


def _one(env: dict[str, str], spec: Path, stamps: Path, timeout_s: float) -> float:
    """Seconds from spawning ``run --detach`` to the last of 4 ranks' first line."""
    for f in stamps.glob("rank-*"):
        f.unlink()
    t0 = time.time()
    out = _ic(env, "run", str(spec), "--detach")
    if out.returncode != 0:
        raise SystemExit(f"run failed: {out.stderr.strip()}")
    deadline = time.monotonic() + timeout_s
    while True:
        got = [f for f in stamps.glob("rank-*") if f.read_text()]
        if len(got) == 4:
            return max(float(f.read_text()) for f in got) - t0
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(got)} of 4 ranks started within {timeout_s:.0f} s")
        time.sleep(0.01)


def _wait_done(env: dict[str, str]) -> None:
    """Until no job is active (the gang's ranks sleep 2 s), so the next run finds its
    capacity idle."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        st = _ic(env, "status", "--json").stdout
        if '"RUNNING"' not in st and '"PENDING"' not in st and '"PROVISIONING"' not in st:
            return
        time.sleep(0.3)


def bench_gang_start(runs: int = 2) -> dict[str, Any]:
    import boto3
    from vm_booter import VmBooter

    out: dict[str, Any] = {}
    saved = {k: os.environ.get(k) for k in FAKE_AWS}
    os.environ.update(FAKE_AWS)
    try:
        with tempfile.TemporaryDirectory() as tmp, moto_server() as endpoint:
            root = Path(tmp)
            ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=endpoint)
            image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
            cluster = f"bench-{uuid.uuid4().hex[:8]}"
            home = root / "home"
            home.mkdir()
            (home / "config.yaml").write_text(
                "providers:\n  local: {}\n  aws:\n    regions: [us-east-1]\n"
                f"    endpoint_url: '{endpoint}'\n    cluster_id: {cluster}\n"
                f"    image_id: {image}\n    max_attempts: 2\n    connect_timeout_s: 2\n"
                "pools: {idle_s: 600, max_instances: 4}\n"
            )
            env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCLOUD_")}
            # 4 CPU slots for the local site whatever this machine has (the ranks sleep)
            env.update(
                INTERCLOUD_HOME=str(home), INTERCLOUD_DAEMON_IDLE_EXIT="120",
                INTERCLOUD_LOCAL_CPUS="4",
            )  # fmt: skip
            env.update(FAKE_AWS)
            stamps = root / "stamps"
            stamps.mkdir()
            try:
                with VmBooter(ec2, cluster, root / "vms") as booter:
                    for provider, cpus in (("local", "1+"), ("aws", "2+")):
                        spec = root / f"{provider}.yaml"
                        _spec(spec, provider, stamps, cpus)
                        times = []
                        for _ in range(runs):
                            times.append(_one(env, spec, stamps, 180.0))
                            _wait_done(env)
                        out[provider] = times
                    out["vms_booted"] = len(booter.vms)
            finally:
                _ic(env, "daemon", "stop")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return {
        k: (
            {"first_s": v[0], "then_median_s": statistics.median(v[1:]) if v[1:] else None}
            if isinstance(v, list)
            else v
        )
        for k, v in out.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2)
    print(bench_gang_start(ap.parse_args().runs))


if __name__ == "__main__":
    main()
