"""The daemon seen from the CLI: a daemon that cannot start makes `run` say why at once,
and a daemon that serves another database is named instead of silently used."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import cli_env as _env
from cli_helpers import ic, stop_daemon


@pytest.fixture()
def home(tmp_path: Path) -> Iterator[Path]:
    h = tmp_path / "home"  # does not exist yet: the CLI must create it
    yield h
    stop_daemon(h)


def _spec(tmp_path: Path, run: str = "echo hi") -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(
        "kind: training\nname: t\nnum_nodes: 1\n"
        f"resources: {{cpus: 1+, providers: [local]}}\nrun: {json.dumps(run)}\n"
    )
    return path


BAD_SETTINGS = [
    ("INTERCLOUD_DECIDER", "nope", "nope"),
    ("INTERCLOUD_QUEUE_POLICY", "nope", "nope"),
    ("INTERCLOUD_DAEMON_IDLE_EXIT", "abc", "INTERCLOUD_DAEMON_IDLE_EXIT"),
]


@pytest.mark.parametrize("detach", [True, False], ids=["detach", "foreground"])
@pytest.mark.parametrize(("name", "value", "needle"), BAD_SETTINGS)
def test_run_says_why_the_daemon_cannot_start(
    home: Path, tmp_path: Path, detach: bool, name: str, value: str, needle: str
) -> None:
    spec = _spec(tmp_path)
    args = ["run", str(spec), *(["--detach"] if detach else [])]
    for _ in range(3):  # again and again: each attempt fails the same way, quickly
        t0 = time.monotonic()
        proc = ic(home, *args, **{name: value})
        took = time.monotonic() - t0
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0, out
        assert "Traceback" not in out
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and needle in lines[0], proc.stderr
        assert took < 10, f"took {took:.1f} s"
    log = home / "daemon.log"
    text = log.read_text() if log.exists() else ""
    assert "Traceback" not in text
    assert len(text.splitlines()) <= 3  # at most one line per failed start


def test_a_failed_start_writes_one_line_and_its_reason(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = _env(home, INTERCLOUD_DECIDER="nope")
    for _ in range(3):
        proc = subprocess.run(
            [sys.executable, "-m", "intercloud.control.daemon"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert proc.returncode == 2  # a bad setting is bad input
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.splitlines()) == 1 and "nope" in proc.stderr
        assert "nope" in (home / "daemon.error").read_text()


def test_daemon_status_names_the_database_and_another_one_is_refused(
    home: Path, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, "sleep 2")
    # it must still run at the refused `run` below: not idle-exit on a loaded machine
    assert ic(home, "run", str(spec), "--detach", INTERCLOUD_DAEMON_IDLE_EXIT="60").returncode == 0
    status = json.loads(ic(home, "daemon", "status", "--json").stdout)
    assert status["running"] and status["database"] == str(home / "state.db")
    assert "state.db" in ic(home, "daemon", "status").stdout

    other = f"sqlite:///{tmp_path / 'other.db'}"
    proc = ic(home, "run", str(spec), "--detach", INTERCLOUD_DB_URL=other)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and str(home / "state.db") in lines[0], proc.stderr
    assert "other.db" in lines[0] and "Traceback" not in proc.stderr
    assert json.loads(ic(home, "status", "--json", INTERCLOUD_DB_URL=other).stdout) == []
