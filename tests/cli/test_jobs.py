"""`intercloud run/status/logs/cancel/queue/daemon` as real processes on the embedded
default (SQLite under a temporary $INTERCLOUD_HOME, the local provider, a real daemon)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import ic, stop_daemon


@pytest.fixture()
def home(tmp_path: Path) -> Iterator[Path]:
    h = tmp_path / "home"  # does not exist yet: the CLI must create it
    yield h
    stop_daemon(h)


def spec(tmp_path: Path, run: str, nodes: int = 2, extra: str = "") -> Path:
    path = tmp_path / f"job-{time.monotonic_ns()}.yaml"
    path.write_text(
        "kind: training\nname: t\n"
        f"num_nodes: {nodes}\nresources: {{cpus: 1+, providers: [local]}}\n"
        f"run: {json.dumps(run)}\n{extra}"
    )
    return path


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0], proc.stderr


def test_quickstart_example_runs_to_success_with_restart_and_resume(home: Path) -> None:
    proc = ic(home, "run", "examples/train-local-ddp.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "placement: local/local" in out
    assert "[node 0]" in out and "[node 1]" in out
    assert "simulated failure at step 220" in out
    assert "resuming from checkpoint at step 200" in out
    assert "SUCCEEDED" in out.splitlines()[-1]
    status = json.loads(ic(home, "status", "1", "--json").stdout)
    for key in ("id", "name", "state", "provider", "region", "instance_type", "nodes"):
        assert key in status
    assert status["state"] == "SUCCEEDED"
    assert status["nodes"] == 2
    assert len(status["attempts"]) == 2
    moves = [(e["from"], e["to"]) for e in status["events"] if e["to"]]
    assert moves[0] == (None, "PENDING")
    assert ("RUNNING", "RECOVERING") in moves and moves[-1] == ("RUNNING", "SUCCEEDED")


def test_exit_codes_and_environment(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "env"
    out.mkdir()
    ok = spec(tmp_path, f"env > {out}/$RANK.env; echo to-stderr >&2", nodes=3)
    proc = ic(home, "run", str(ok))
    assert proc.returncode == 0, proc.stderr
    envs = [
        dict(
            line.split("=", 1)
            for line in (out / f"{r}.env").read_text().splitlines()
            if "=" in line
        )
        for r in range(3)
    ]
    for rank, env in enumerate(envs):
        assert env["RANK"] == env["INTERCLOUD_NODE_RANK"] == str(rank)
        assert env["WORLD_SIZE"] == env["INTERCLOUD_NUM_NODES"] == "3"
        assert env["INTERCLOUD_JOB_ID"] == "1"
        assert env["MASTER_ADDR"] and env["MASTER_PORT"].isdigit()
        assert "CUDA_VISIBLE_DEVICES" in env and env["INTERCLOUD_CHECKPOINT_DIR"]
    assert "to-stderr" in ic(home, "logs", "1", "--node", "2").stdout

    bad = spec(tmp_path, 'if [ "$RANK" = 1 ]; then exit 5; fi; sleep 0.2', nodes=2)
    proc = ic(home, "run", str(bad))
    assert proc.returncode == 1
    assert "FAILED" in proc.stdout.splitlines()[-1]
    assert json.loads(ic(home, "status", "2", "--json").stdout)["exit_code"] == 5


def test_detach_cancel_and_queue(home: Path, tmp_path: Path) -> None:
    long = spec(tmp_path, "sleep 60", nodes=2)
    proc = ic(home, "run", str(long), "--detach")
    assert proc.returncode == 0, proc.stderr
    deadline = time.monotonic() + 30
    while json.loads(ic(home, "status", "1", "--json").stdout)["state"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    queue = json.loads(ic(home, "queue", "--json").stdout)
    assert [q["id"] for q in queue] == [1]
    assert ic(home, "cancel", "1").returncode == 0
    deadline = time.monotonic() + 30
    while json.loads(ic(home, "status", "1", "--json").stdout)["state"] != "CANCELLED":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    pids = [n["pid"] for n in json.loads(ic(home, "status", "1", "--json").stdout)["node_runs"]]
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )
    one_line_error(ic(home, "cancel", "1"), 2, "already CANCELLED")


def test_bad_input_paths(home: Path, tmp_path: Path) -> None:
    one_line_error(ic(home, "status", "42"), 2, "42")
    one_line_error(ic(home, "logs", "42"), 2, "42")
    one_line_error(ic(home, "cancel", "42"), 2, "42")
    gpu = tmp_path / "gpu.yaml"
    gpu.write_text("kind: training\nname: big\nresources: {accelerators: H100:8}\nrun: 'true'\n")
    proc = ic(home, "run", str(gpu))
    one_line_error(proc, 1, "no enabled provider can run 'big'")
    assert "USD/h" in proc.stderr
    one_line_error(ic(home, "run", str(tmp_path / "missing.yaml")), 2, "missing.yaml")


def test_corrupt_database_is_one_line_and_untouched(home: Path) -> None:
    home.mkdir()
    db = home / "state.db"
    db.write_bytes(b"this is not a database" * 100)
    before = db.read_bytes()
    for args in (("status",), ("queue",), ("run", "examples/train-local-ddp.yaml")):
        proc = ic(home, *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert len([ln for ln in proc.stderr.splitlines() if ln.strip()]) == 1
    assert db.read_bytes() == before


def test_daemon_commands(home: Path) -> None:
    assert "running: False" in ic(home, "daemon", "status").stdout
    # idle for 3 s it would exit: on a loaded machine, maybe before `status` asks
    assert ic(home, "daemon", "start", INTERCLOUD_DAEMON_IDLE_EXIT="60").returncode == 0
    assert "running: True" in ic(home, "daemon", "status").stdout
    assert "stopped" in ic(home, "daemon", "stop").stdout
    assert "running: False" in ic(home, "daemon", "status").stdout
