"""The embedded control-loop daemon: one per ``$INTERCLOUD_HOME``, started on demand.

Files under the home::

    daemon.lock    flock held by the running daemon for its whole life (the truth)
    daemon.pid     "<pid> <start_time>" of the daemon holding the lock (informative)
    daemon.spawn   flock serialising ``ensure_daemon`` callers while one spawns
    daemon.log     the daemon's stdout and stderr (appended)

``run_daemon`` takes the lock or returns at once (another daemon runs), opens the store,
builds the enabled providers, calls ``Reconciler.recover()`` and then ``step()`` in a
loop, sleeping 20-200 ms (longer the longer nothing changes). It exits by itself once
no job has been non-terminal for ``idle_exit_s`` seconds, and on SIGTERM/SIGINT after
the step in progress. It may also be SIGKILLed at any instant: the next one recovers.
Placement decisions come from the fleet scheduler (``control.fleet_decider``; settings:
``INTERCLOUD_DECIDER``, ``INTERCLOUD_QUEUE_POLICY``, ``INTERCLOUD_PREEMPTION`` or the
store settings ``scheduler.queue_policy`` / ``scheduler.preemption``).

``ensure_daemon`` costs one ``flock`` probe and one small file read when the daemon
already runs (well under 5 ms); otherwise it spawns ``python -m intercloud.control.daemon``
detached (own session) and waits until it holds the lock. Two callers at once start one
daemon between them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from intercloud.providers.local_shim import proc_start_time, write_atomic

if TYPE_CHECKING:
    from intercloud.providers.base import Provider

LOCK_FILE = "daemon.lock"
PID_FILE = "daemon.pid"
SPAWN_LOCK_FILE = "daemon.spawn"
LOG_FILE = "daemon.log"
DEFAULT_IDLE_EXIT_S = 30.0
SLEEP_MIN_S = 0.02
SLEEP_MAX_S = 0.2

log = logging.getLogger("intercloud.control.daemon")


class DaemonError(RuntimeError):
    """The daemon could not be started or stopped (one line, fit for a user)."""


# -- locks and the pid file -------------------------------------------------------------
def _open_lock(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _lock_held(path: Path) -> bool:
    """True while some process holds ``path``'s flock (a failed probe changes nothing)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        return not _try_lock(fd)
    finally:
        os.close(fd)


def _read_pid(home: Path) -> tuple[int, int] | None:
    try:
        pid, start = (home / PID_FILE).read_text().split()
        return int(pid), int(start)
    except (OSError, ValueError):
        return None


def _running_pid(home: Path) -> int | None:
    """The pid of the daemon holding the lock (its pid file verified by start time)."""
    if not _lock_held(home / LOCK_FILE):
        return None
    recorded = _read_pid(home)
    if recorded is None or proc_start_time(recorded[0]) != recorded[1]:
        return None  # the lock holder has not written its pid file yet
    return recorded[0]


# -- the daemon itself ------------------------------------------------------------------
def build_providers(environ: Mapping[str, str] | None = None) -> dict[str, Provider]:
    """The enabled providers, by name. For now: the local provider from the environment
    (one adapter per provider name its sites pose as). ``INTERCLOUD_PROVIDERS`` is
    reserved for choosing others."""
    from intercloud.providers.local import LocalProvider
    from intercloud.providers.local_config import LocalConfig

    config = LocalConfig.from_env(dict(environ) if environ is not None else None)
    names = sorted({s.provider for s in config.sites})
    return {name: LocalProvider(config.for_provider(name)) for name in names}


class _Stop:
    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


def run_daemon(
    home: Path,
    db_url: str | None = None,
    idle_exit_s: float | None = None,
    providers: Mapping[str, Provider] | None = None,
) -> int:
    """Run the control loop until idle or told to stop; return an exit status (0; 3 if
    another daemon already holds the lock of ``home``). See the module docstring."""
    from intercloud.control.crashpoints import crashpoint_from_env
    from intercloud.control.reconciler import Reconciler
    from intercloud.store import StoreError, database_url, open_store

    home = Path(home).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    if idle_exit_s is None:
        from intercloud import settings

        idle_exit_s = settings.idle_exit_s()
    lock_fd = _open_lock(home / LOCK_FILE)
    if not _try_lock(lock_fd):
        os.close(lock_fd)
        log.info("another daemon holds %s", home / LOCK_FILE)
        return 3
    pid = os.getpid()
    write_atomic(str(home / PID_FILE), f"{pid} {proc_start_time(pid) or 0}\n")
    stop = _Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        store = open_store(db_url or database_url(home))
        reconciler = Reconciler(
            store,
            providers if providers is not None else build_providers(),
            crashpoint=crashpoint_from_env(),
        )
        log.info("daemon %s started on %s", pid, store.name)
        reconciler.recover()
        sleep = SLEEP_MIN_S
        idle_since = time.monotonic()
        while not stop.requested:
            try:
                changed = reconciler.step()
            except StoreError as exc:
                log.warning("store unavailable: %s", exc)
                changed, sleep = False, SLEEP_MAX_S * 5
            except Exception:
                log.exception("reconcile step failed")
                changed, sleep = False, SLEEP_MAX_S * 5
            now = time.monotonic()
            if reconciler.active_jobs or changed:
                idle_since = now
            elif now - idle_since >= idle_exit_s:
                log.info("idle for %.0f s: exiting", idle_exit_s)
                break
            sleep = SLEEP_MIN_S if changed else min(SLEEP_MAX_S, sleep * 1.5)
            time.sleep(sleep)
        store.close()
        return 0
    finally:
        recorded = _read_pid(home)
        if recorded is not None and recorded[0] == pid:
            with contextlib.suppress(OSError):
                (home / PID_FILE).unlink()
        os.close(lock_fd)  # releases the lock last


# -- managing it from the CLI ------------------------------------------------------------
@contextlib.contextmanager
def _spawn_lock(home: Path) -> Iterator[None]:
    fd = _open_lock(home / SPAWN_LOCK_FILE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def ensure_daemon(home: Path, db_url: str | None = None, start_timeout_s: float = 15.0) -> int:
    """The pid of the daemon of ``home``, started (detached) if none runs.

    ``db_url`` (else ``INTERCLOUD_DB_URL``, else the home's SQLite file) is passed to a
    newly started daemon. Race-free: concurrent callers serialise on ``daemon.spawn``
    and all get the one daemon's pid. DaemonError if it does not take its lock within
    ``start_timeout_s`` (its log is named).
    """
    home = Path(home).expanduser()
    pid = _running_pid(home)
    if pid is not None:
        return pid
    home.mkdir(parents=True, exist_ok=True)
    with _spawn_lock(home):
        pid = _running_pid(home)
        if pid is not None:
            return pid
        env = dict(os.environ)
        env["INTERCLOUD_HOME"] = str(home)
        if db_url:
            env["INTERCLOUD_DB_URL"] = db_url
        with open(home / LOG_FILE, "ab") as out:
            child = subprocess.Popen(
                [sys.executable, "-m", "intercloud.control.daemon"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                close_fds=True,
            )
        deadline = time.monotonic() + start_timeout_s
        while time.monotonic() < deadline:
            pid = _running_pid(home)
            if pid is not None:
                return pid
            if child.poll() is not None and not _lock_held(home / LOCK_FILE):
                break
            time.sleep(0.01)
        raise DaemonError(f"the daemon did not start; see {home / LOG_FILE}")


def stop_daemon(home: Path, timeout_s: float = 10.0) -> bool:
    """Ask the daemon of ``home`` to stop (SIGTERM: it finishes its step), SIGKILL it
    after ``timeout_s``; True if one was running. Returns once its lock is free."""
    home = Path(home).expanduser()
    pid = _running_pid(home)
    if pid is None:
        return False
    recorded = _read_pid(home)
    start = recorded[1] if recorded else 0
    with contextlib.suppress(ProcessLookupError):
        if proc_start_time(pid) == start:
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _lock_held(home / LOCK_FILE):
        if time.monotonic() >= deadline:
            with contextlib.suppress(ProcessLookupError):
                if proc_start_time(pid) == start:
                    os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout_s
        time.sleep(0.01)
    return True


def daemon_status(home: Path) -> dict[str, Any]:
    """``{"running": bool, "pid": int | None, "home": str, "log": str}``."""
    home = Path(home).expanduser()
    pid = _running_pid(home)
    return {
        "running": pid is not None or _lock_held(home / LOCK_FILE),
        "pid": pid,
        "home": str(home),
        "log": str(home / LOG_FILE),
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m intercloud.control.daemon``: run in the foreground for
    ``$INTERCLOUD_HOME`` and ``$INTERCLOUD_DB_URL``."""
    from intercloud import settings

    try:
        settings.check_all()
    except settings.SettingError as exc:
        # One line, not a traceback; the CLI validates first, so this is a direct start.
        sys.stderr.write(f"intercloud daemon: {exc}\n")
        return 2
    logging.basicConfig(
        level=settings.log_level(),
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )
    return run_daemon(settings.home(), settings.db_url())


if __name__ == "__main__":
    sys.exit(main(sys.argv))
