"""`intercloud queue` shows why each pending job waits: the fleet scheduler's hold reason,
written to the store by the daemon (real processes, embedded default, a 2-slot site)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import cli_env, stop_daemon
from cli_helpers import ic as _ic

SITES = "local/local,cpus=2"


def _env(home: Path) -> dict[str, str]:
    return cli_env(home, INTERCLOUD_LOCAL_SITES=SITES)


def ic(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _ic(home, *args, INTERCLOUD_LOCAL_SITES=SITES)


@pytest.fixture()
def home(tmp_path: Path) -> Iterator[Path]:
    h = tmp_path / "home"  # does not exist yet: the CLI must create it
    yield h
    stop_daemon(h)


def _spec(tmp_path: Path, name: str, run: str, nodes: int) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"kind: training\nname: {name}\nnum_nodes: {nodes}\n"
        f"resources: {{cpus: 1+, providers: [local]}}\nrun: {json.dumps(run)}\n"
    )
    return path


def _queue(home: Path) -> dict[int, dict[str, Any]]:
    proc = ic(home, "queue", "--json")
    assert proc.returncode == 0, proc.stderr
    return {row["id"]: row for row in json.loads(proc.stdout)}


def test_queue_shows_the_capacity_reason_of_a_pending_job(home: Path, tmp_path: Path) -> None:
    big = _spec(tmp_path, "big", "sleep 60", nodes=2)
    assert ic(home, "run", str(big), "--detach").returncode == 0
    small = _spec(tmp_path, "small", "true", nodes=1)
    assert ic(home, "run", str(small), "--detach").returncode == 0
    deadline = time.monotonic() + 60
    while True:
        rows = _queue(home)
        if rows[1]["state"] == "RUNNING" and "waiting" in (rows[2]["reason"] or ""):
            break
        assert time.monotonic() < deadline, rows
        time.sleep(0.2)
    assert rows[2]["state"] == "PENDING"
    assert rows[2]["reason"] == (
        "waiting for capacity: 1 × CPU; local/local local-cpu: needs 1 CPUs (free 0)"
    )
    table = ic(home, "queue")
    assert table.returncode == 0, table.stderr
    text = " ".join(table.stdout.split())
    assert "reason" in text and "waiting for capacity" in text and "PENDING" in text
    assert ic(home, "cancel", "1").returncode == 0
    deadline = time.monotonic() + 60
    while set(_queue(home)):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    status = json.loads(ic(home, "status", "2", "--json").stdout)
    assert status["state"] == "SUCCEEDED"
