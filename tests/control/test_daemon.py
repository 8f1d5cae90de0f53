"""The embedded daemon: started on demand (once, even by concurrent callers), runs jobs,
stops when asked or when idle."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from control_helpers import spec

from intercloud.control.daemon import daemon_status, ensure_daemon, stop_daemon
from intercloud.store import Store
from node_processes import leftovers_killed


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    monkeypatch.setenv("INTERCLOUD_HOME", str(h))
    monkeypatch.setenv("INTERCLOUD_LOCAL_CPUS", "8")
    monkeypatch.delenv("INTERCLOUD_CRASHPOINTS", raising=False)
    yield h
    stop_daemon(h, timeout_s=5)
    assert leftovers_killed(h / "local") == []


def test_ensure_daemon_runs_jobs_then_exits_when_idle(
    home: Path, db_url: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERCLOUD_DAEMON_IDLE_EXIT", "1")
    job = store.submit("training", "j", spec("sleep 0.2", nodes=2))
    pid = ensure_daemon(home, db_url)
    batches = []  # the best of 5 batches: a loaded machine may preempt us in any one
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(20):
            assert ensure_daemon(home, db_url) == pid
        batches.append((time.perf_counter() - t0) * 1000 / 20)
    per_call_ms = min(batches)
    assert per_call_ms < 5, f"ensure_daemon took {batches} ms per call with the daemon running"
    status = daemon_status(home)
    assert status["running"] and status["pid"] == pid
    deadline = time.monotonic() + 30
    while not store.get(job).state.terminal:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert store.get(job).state.value == "SUCCEEDED"
    while daemon_status(home)["running"]:  # idle for 1 s: it exits by itself
        assert time.monotonic() < deadline, "the daemon did not exit when idle"
        time.sleep(0.05)
    assert not (home / "daemon.pid").exists()


def test_concurrent_ensure_starts_one_daemon_and_stop_stops_it(home: Path, db_url: str) -> None:
    pids: list[int] = []
    threads = [
        threading.Thread(target=lambda: pids.append(ensure_daemon(home, db_url))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(pids) == 4 and len(set(pids)) == 1
    assert stop_daemon(home, timeout_s=5)
    assert not daemon_status(home)["running"]
    assert not stop_daemon(home)
