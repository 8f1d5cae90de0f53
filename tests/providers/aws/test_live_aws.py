"""The live loop on AWS (moto): ``intercloud run`` launches an instance through the
scheduler's provisioning, the instance boots its own user-data (``vm_booter``), its node
agent enrols with the daemon and runs the job; the idle instance is released after
``pools.idle_s``. Every piece is the real one: CLI, daemon, fleet scheduler, instance
step, bridge, agent server, boto3 against moto's server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from vm_booter import VmBooter

from intercloud.store import open_store

REPO = Path(__file__).resolve().parents[3]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCLOUD_")}
    env.update(INTERCLOUD_HOME=str(home), INTERCLOUD_DAEMON_IDLE_EXIT="5")
    return env


def ic(home: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "intercloud", *args],
        env=_env(home),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        cwd=REPO,
    )


@pytest.fixture
def home(tmp_path: Path, moto_endpoint: str, moto_image: str) -> Iterator[tuple[Path, str]]:
    h = tmp_path / "home"
    h.mkdir()
    cluster = f"live-{uuid.uuid4().hex[:8]}"
    (h / "config.yaml").write_text(
        "providers:\n"
        "  aws:\n"
        "    regions: [us-east-1]\n"
        f"    endpoint_url: '{moto_endpoint}'\n"
        f"    cluster_id: {cluster}\n"
        f"    image_id: {moto_image}\n"
        "    max_attempts: 2\n"
        "    connect_timeout_s: 2\n"
        "pools: {idle_s: 2, max_instances: 4}\n"
    )
    yield h, cluster
    ic(h, "daemon", "stop", timeout=60)


def _instances(home: Path) -> list[Any]:
    store = open_store(f"sqlite:///{home / 'state.db'}")
    try:
        return store.instances()
    finally:
        store.close()


def test_run_on_aws_boots_an_instance_runs_the_job_and_releases_it(
    home: tuple[Path, str], ec2: Any, tmp_path: Path
) -> None:
    h, cluster = home
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "kind: training\nname: on-aws\nresources: {cpus: '2+', providers: [aws]}\n"
        'run: echo "hello from $INTERCLOUD_PROVIDER rank $RANK of $WORLD_SIZE"\n'
    )
    with VmBooter(ec2, cluster, tmp_path / "vms") as booter:
        out = ic(h, "run", str(spec), "--detach")
        assert out.returncode == 0, out.stderr
        job = json.loads(ic(h, "status", "--json").stdout)[0]["id"]
        deadline = time.monotonic() + 150
        state = ""
        while time.monotonic() < deadline:
            st = json.loads(ic(h, "status", str(job), "--json").stdout)
            state = st["state"]
            if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
                break
            time.sleep(1)
        log = (h / "daemon.log").read_text()
        assert state == "SUCCEEDED", f"{st}\n{log[-3000:]}\n{booter.errors}"
        logs = ic(h, "logs", str(job))
        assert "hello from aws rank 0 of 1" in logs.stdout, logs
        # one instance was launched for it, and released once idle
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = _instances(h)
            if rows and all(r.state == "terminated" for r in rows):
                break
            time.sleep(1)
        assert [r.state for r in rows] == ["terminated"], rows
        assert len(booter.vms) == 1
        # `intercloud fleet` shows it: gone from the live view, there with --all
        assert json.loads(ic(h, "fleet", "--json").stdout)["instances"] == []
        (shown,) = json.loads(ic(h, "fleet", "--all", "--json").stdout)["instances"]
        assert shown["provider"] == "aws" and shown["state"] == "terminated"
        assert shown["provider_instance_id"] in booter.vms
        assert "Traceback" not in (h / "daemon.log").read_text()
