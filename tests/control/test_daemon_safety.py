"""The daemon's safety rules: private state files, a pid file that is never trusted blindly,
nothing that escapes a job, and a daemon that agrees with the store it serves."""

from __future__ import annotations

import fcntl
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from control_helpers import spec

from intercloud.control.daemon import (
    DaemonError,
    daemon_status,
    ensure_daemon,
    stop_daemon,
)
from intercloud.providers.local_shim import proc_start_time
from intercloud.sdk import Client
from intercloud.store import Store, open_store
from intercloud.store.testing import reset_database
from node_processes import leftovers_killed, processes_under


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    h = tmp_path / "home"
    monkeypatch.setenv("INTERCLOUD_HOME", str(h))
    monkeypatch.setenv("INTERCLOUD_LOCAL_CPUS", "8")
    monkeypatch.setenv("INTERCLOUD_DAEMON_IDLE_EXIT", "60")  # up for the whole test
    for name in ("INTERCLOUD_CRASHPOINTS", "INTERCLOUD_DB_URL"):
        monkeypatch.delenv(name, raising=False)
    yield h
    stop_daemon(h, timeout_s=5)
    assert leftovers_killed(h / "local") == []


def _wait(store: Store, job: int, state: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while store.get(job).state.value != state:
        assert time.monotonic() < deadline, f"job {job}: {store.get(job).state}, not {state}"
        time.sleep(0.05)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- private state files -------------------------------------------------------------------
def test_state_files_are_private_whatever_the_umask(home: Path) -> None:
    old = os.umask(0)  # inherited by the daemon and every node it starts
    try:
        with Client(home) as client:
            store = client.store
            job = store.submit(
                "training", "j", spec("echo secret; touch $INTERCLOUD_CHECKPOINT_DIR/c")
            )
            client.ensure_daemon()
            _wait(store, job, "SUCCEEDED")
            keyed = home / "local" / store.store_id()
            private_dirs = [
                home,
                home / "local",
                keyed,
                keyed / "jobs" / str(job),
                keyed / "jobs" / str(job) / "logs",
                keyed / "jobs" / str(job) / "checkpoints",
            ]
            private_files = [
                home / "state.db",
                home / "state.db-wal",
                home / "state.db-shm",
                home / "daemon.log",
                home / "daemon.pid",
                home / "daemon.lock",
                keyed / "jobs" / str(job) / "logs" / "node-0.log",
            ]
            assert {str(d): oct(_mode(d)) for d in private_dirs} == {
                str(d): "0o700" for d in private_dirs
            }
            assert {str(f): oct(_mode(f)) for f in private_files} == {
                str(f): "0o600" for f in private_files
            }
            # every file and folder intercloud keeps for the job (the job's own working
            # directory and checkpoints hold what it wrote, with its own modes)
            job_dir = keyed / "jobs" / str(job)
            kept = [
                p
                for p in job_dir.rglob("*")
                if not {"work", "checkpoints"} & set(p.relative_to(job_dir).parts)
            ]
            assert any(p.name == "shim.err" for p in kept)
            assert {str(p): oct(_mode(p)) for p in kept} == {
                str(p): "0o700" if p.is_dir() else "0o600" for p in kept
            }
            assert "secret" in "".join(client.logs(job))
    finally:
        os.umask(old)


def test_an_existing_home_and_database_are_made_private(home: Path) -> None:
    home.mkdir(mode=0o755)
    open_store(f"sqlite:///{home / 'state.db'}").close()
    (home / "state.db").chmod(0o644)
    ensure_daemon(home)
    assert _mode(home) == 0o700
    assert _mode(home / "state.db") == 0o600


# -- the pid file is never trusted blindly -------------------------------------------------
def _forge(home: Path, pid: int) -> None:
    start = proc_start_time(pid)
    assert start is not None
    (home / "daemon.pid").write_text(f"{pid} {start}\n")


def test_a_forged_pid_file_never_gets_a_process_signalled(home: Path) -> None:
    home.mkdir(mode=0o700)
    got: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: got.append(signum))
    lock = os.open(home / "daemon.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)  # a lock holder that is no daemon (this test)
    decoys = [
        subprocess.Popen(["sleep", "60"]),
        # names the daemon module, but of another home
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import time; time.sleep(60)",
                "intercloud.control.daemon",
                "--home",
                str(home.parent / "elsewhere"),
            ]
        ),
    ]
    try:
        time.sleep(0.2)
        for target in [os.getpid(), *(d.pid for d in decoys)]:
            _forge(home, target)
            assert daemon_status(home)["pid"] is None
            assert not stop_daemon(home, timeout_s=0.5)
        assert got == []
        assert all(d.poll() is None for d in decoys)
    finally:
        signal.signal(signal.SIGTERM, previous)
        os.close(lock)
        for d in decoys:
            d.kill()
            d.wait()
    # a stale pid file (no lock holder) names nobody either
    _forge(home, os.getpid())
    assert not stop_daemon(home, timeout_s=0.5)
    assert got == []


def test_stop_still_stops_the_real_daemon(home: Path) -> None:
    pid = ensure_daemon(home)
    assert daemon_status(home)["pid"] == pid
    proc = psutil.Process(pid)
    assert stop_daemon(home, timeout_s=5)
    assert _gone([proc])  # it released its lock as its last act


# -- nothing escapes a job -----------------------------------------------------------------
ESCAPE = textwrap.dedent(
    """
    import os, subprocess, sys, time
    quiet = dict(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pids = [subprocess.Popen(["sleep", "300"], start_new_session=True, close_fds=True,
                             **quiet).pid]
    r, w = os.pipe()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.write(w, str(os.getpid()).encode())
            os.closerange(3, w)
            os.closerange(w + 1, 4096)
            time.sleep(301)
        os._exit(0)
    os.close(w)
    pids.append(int(os.read(r, 32)))
    out = os.path.join(os.environ["INTERCLOUD_CHECKPOINT_DIR"], "escaped")
    with open(out + ".tmp", "w") as f:
        f.write(" ".join(map(str, pids)))
    os.replace(out + ".tmp", out)
    """
)


def _escaping_job(store: Store, tmp_path: Path, then: str) -> int:
    script = tmp_path / "escape.py"
    script.write_text(ESCAPE)
    return store.submit("training", "esc", spec(f"{sys.executable} {script} && {then}"))


def _escaped(home: Path, store: Store, job: int) -> list[psutil.Process]:
    path = home / "local" / store.store_id() / "jobs" / str(job) / "checkpoints" / "escaped"
    deadline = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline, "the job did not start its escapers"
        time.sleep(0.05)
    procs = [psutil.Process(int(p)) for p in path.read_text().split()]
    assert all(p.is_running() for p in procs)
    return procs


def _gone(procs: list[psutil.Process], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for p in procs:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                continue
        if not alive:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


@pytest.mark.parametrize("how", ["ends", "cancelled", "daemon-killed-then-cancelled"])
def test_a_setsid_child_never_outlives_its_job(home: Path, tmp_path: Path, how: str) -> None:
    store = open_store(f"sqlite:///{home / 'state.db'}")
    try:
        then = "sleep 0.3" if how == "ends" else "sleep 300"
        job = _escaping_job(store, tmp_path, then)
        pid = ensure_daemon(home)
        procs = _escaped(home, store, job)
        if how == "daemon-killed-then-cancelled":
            os.kill(pid, signal.SIGKILL)
            while daemon_status(home)["running"]:
                time.sleep(0.02)
            assert not _gone(procs, timeout=0.3)  # jobs outlive the daemon...
            assert ensure_daemon(home) != pid  # ...which recovers them
        if how != "ends":
            store.request_cancel(job)
            ensure_daemon(home)
        _wait(store, job, "SUCCEEDED" if how == "ends" else "CANCELLED")
        assert _gone(procs)
    finally:
        store.close()


# -- store and daemon agree ----------------------------------------------------------------
def test_a_daemon_of_another_database_is_named_not_silently_used(
    home: Path, tmp_path: Path
) -> None:
    a, b = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    ensure_daemon(home, a)
    assert daemon_status(home)["database"] == str(tmp_path / "a.db")
    with pytest.raises(DaemonError, match=r"serves database .*a\.db, not database .*b\.db"):
        ensure_daemon(home, b)
    spec_file = tmp_path / "job.yaml"
    spec_file.write_text(spec("true"))
    with Client(home, b) as client, pytest.raises(DaemonError, match=r"a\.db"):
        client.submit(spec_file)
    with open_store(b) as store:
        assert store.list_workloads() == []  # refused before anything was stored


def test_deleting_the_database_under_a_running_daemon(home: Path, tmp_path: Path) -> None:
    db = home / "state.db"
    with Client(home) as client:
        store = client.store
        old_job = store.submit("training", "old", spec("echo old-output; sleep 300", nodes=2))
        client.ensure_daemon()
        _wait(store, old_job, "RUNNING")
        old_id = store.store_id()
        old_procs = processes_under(home / "local" / old_id)
        assert old_procs
        deadline = time.monotonic() + 10
        while "old-output" not in "".join(client.logs(old_job)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)

    with Client(home) as client:
        store = client.store
        assert store.store_id() != old_id
        job = store.submit("training", "new", spec("echo new-output", nodes=2))
        assert job == old_job  # ids start again at 1 ...
        client.ensure_daemon()
        _wait(store, job, "SUCCEEDED")
        text = "".join(client.logs(job))
        assert "new-output" in text and "old-output" not in text  # ... but files do not
        assert daemon_status(home)["store_id"] == store.store_id()
    assert _gone(old_procs)  # the deleted database's processes were killed
    assert list((home / "local" / old_id / "allocations").glob("*.json")) == []


def test_a_database_emptied_under_a_running_daemon(home: Path, tmp_path: Path, db_url: str) -> None:
    """Same URL, new identity (emptied, or dropped and created again): the daemon of the
    old identity gives way before the new job is stored, and the new one kills what the
    old database left running."""
    with Client(home, db_url) as client:
        store = client.store
        old_job = store.submit("training", "old", spec("echo old-output; sleep 300"))
        client.ensure_daemon()
        _wait(store, old_job, "RUNNING")
        old_id = store.store_id()
        old_procs = processes_under(home / "local" / old_id)
        assert old_procs
    reset_database(db_url)
    spec_file = tmp_path / "new.yaml"
    spec_file.write_text(spec("echo new-output"))
    with Client(home, db_url) as client:
        sub = client.submit(spec_file)
        assert sub.job_id == old_job
        _wait(client.store, sub.job_id, "SUCCEEDED")
        text = "".join(client.logs(sub.job_id))
        assert "new-output" in text and "old-output" not in text
        assert daemon_status(home)["store_id"] == client.store.store_id() != old_id
    assert _gone(old_procs)
