"""The embedded control-loop daemon: one per ``$INTERCLOUD_HOME``, started on demand.

Files under the home (the home is 0700, every file 0600)::

    daemon.lock    flock held by the running daemon for its whole life (the truth)
    daemon.pid     written once the daemon is ready (store open, providers built, jobs
                   recovered): "<pid> <start_time>", then its store id and the name of
                   the database it serves, one per line
    daemon.error   why the last daemon could not start (one line; removed at each start)
    daemon.spawn   flock serialising ``ensure_daemon`` callers while one spawns
    daemon.log     the daemon's stdout and stderr (appended)
    daemon.holder  the control-loop lease holder name of the last daemon started here

``run_daemon`` takes the lock or returns at once (another daemon runs), opens the store,
builds the enabled providers of ``config.yaml`` (``build_providers``; the local
provider's files keyed to the store's id, see ``providers.local.store_config``; a
provider that cannot be built is logged and left out, the others kept), tries the
database's control-loop lease (``control.leadership``; ``Reconciler.recover()`` when it
gains it), writes its pid file and then, while it leads, calls ``step()`` in a loop,
sleeping 20-200 ms (longer the longer nothing changes). Several homes may share one
PostgreSQL database: one daemon leads, the others stand by, polling the lease every
``renew_s`` (``INTERCLOUD_LEADER_TTL`` / 3) and taking over when it runs out. A start
that fails (a bad setting or config.yaml, an unusable database) writes one line to its
log and to ``daemon.error`` and exits 1: no traceback, however often it is retried.
It exits by itself once no job has been non-terminal for ``idle_exit_s`` seconds (a
standby: no non-terminal job in the whole database), and on SIGTERM/SIGINT after the
step in progress, releasing the lease. It may also be SIGKILLed at any instant:
the next one recovers. Placement decisions come from the fleet scheduler
(``control.fleet_decider``; settings: ``INTERCLOUD_DECIDER``, ``INTERCLOUD_QUEUE_POLICY``,
``INTERCLOUD_PREEMPTION`` or the store settings ``scheduler.queue_policy`` /
``scheduler.preemption``).

The pid file is trusted only when the process it names holds the lock's role for real:
its start time is the recorded one and its command line is this module's with this
home (``--home``, or ``INTERCLOUD_HOME`` in its environment). A forged or stale pid file
therefore never gets another process signalled.

``ensure_daemon`` costs one ``flock`` probe and one small file read when the daemon
already runs (well under 5 ms); otherwise it spawns ``python -m intercloud.control.daemon
--home HOME`` detached (own session) and waits for its pid file, or for it to exit (then
``DaemonError`` says why, from ``daemon.error``). Two callers at once start one daemon
between them. A running daemon that serves another database than the caller's is an
error naming both (one daemon per home).
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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from intercloud.control.leadership import Leadership
from intercloud.providers.local_shim import proc_start_time, signal_if, write_atomic
from intercloud.store.private import open_private_append, private_home

if TYPE_CHECKING:
    from intercloud.providers.base import Provider
    from intercloud.providers.contract import AsyncProvider

LOCK_FILE = "daemon.lock"
PID_FILE = "daemon.pid"
ERROR_FILE = "daemon.error"
SPAWN_LOCK_FILE = "daemon.spawn"
LOG_FILE = "daemon.log"
HOLDER_FILE = "daemon.holder"
MODULE = "intercloud.control.daemon"
SLEEP_MIN_S = 0.02
SLEEP_MAX_S = 0.2

log = logging.getLogger("intercloud.control.daemon")


class DaemonError(RuntimeError):
    """The daemon could not be started or stopped (one line, fit for a user)."""


# -- locks and the pid file -------------------------------------------------------------
def _open_lock(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


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


@dataclass(frozen=True, slots=True)
class DaemonRecord:
    """What ``daemon.pid`` says: who the daemon is and which database it serves."""

    pid: int
    start_time: int
    store_id: str = ""
    database: str = ""


def _read_pid(home: Path) -> DaemonRecord | None:
    try:
        lines = (home / PID_FILE).read_text().splitlines()
        pid, start = lines[0].split()
        extra = [*lines[1:3], "", ""]
        return DaemonRecord(int(pid), int(start), extra[0].strip(), extra[1].strip())
    except (OSError, ValueError, IndexError):
        return None


def _is_daemon_of(pid: int, start_time: int, home: Path) -> bool:
    """True if ``pid`` is alive with ``start_time`` and runs this module for ``home``."""
    if start_time == 0 or proc_start_time(pid) != start_time:
        return False
    argv, environ = _cmdline_and_env(pid)
    if MODULE not in argv:
        return False
    if "--home" in argv:
        i = argv.index("--home")
        named = argv[i + 1] if i + 1 < len(argv) else ""
    else:
        named = environ.get("INTERCLOUD_HOME", "")
    return bool(named) and Path(named).expanduser().absolute() == home.absolute()


def _cmdline_and_env(pid: int) -> tuple[list[str], dict[str, str]]:
    """The command line and initial environment of ``pid`` (empty if unreadable)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        with open(f"/proc/{pid}/environ", "rb") as f:
            pairs = [e.decode(errors="replace").partition("=") for e in f.read().split(b"\0")]
        return argv, {k: v for k, _, v in pairs if k}
    except OSError:
        pass
    import psutil

    try:
        proc = psutil.Process(pid)
        return proc.cmdline(), proc.environ()
    except psutil.Error:
        return [], {}


def _running(home: Path) -> DaemonRecord | None:
    """The record of the ready daemon holding the lock, verified (``_is_daemon_of``)."""
    if not _lock_held(home / LOCK_FILE):
        return None
    recorded = _read_pid(home)
    if recorded is None or not _is_daemon_of(recorded.pid, recorded.start_time, home):
        return None  # not ready yet, or a pid file that names someone else
    return recorded


def _running_pid(home: Path) -> int | None:
    """The pid of the daemon holding the lock (its pid file verified)."""
    recorded = _running(home)
    return recorded.pid if recorded else None


def _signal(pid: int, start_time: int, home: Path, sig: int) -> bool:
    """Send ``sig`` to ``pid`` only if it is the daemon of ``home``; True if sent."""
    return signal_if(pid, lambda: _is_daemon_of(pid, start_time, home), sig)


# -- the daemon itself ------------------------------------------------------------------
def build_providers(
    environ: Mapping[str, str] | None = None,
    *,
    store_id: str | None = None,
    database: str = "",
    wrap_async: Callable[[str, AsyncProvider], Provider] | None = None,
) -> dict[str, Provider]:
    """The enabled providers of the configuration (``intercloud.config``: config.yaml,
    else ``local`` only), by name, as the job reconciler drives them; the local
    provider's files keyed to ``store_id`` when given (``providers.local.store_config``).

    A bad configuration raises ``ConfigError`` (the daemon does not start, the line in
    ``daemon.error``). A provider that cannot be built is logged and left out, the others
    kept. Asynchronous providers go through ``wrap_async`` (the instance bridge); without
    it they are left out (logged).
    """
    from intercloud import settings
    from intercloud.config import load_config
    from intercloud.providers import registry

    env = dict(os.environ if environ is None else environ)
    home = settings.home(env)
    config = load_config(env, home)
    ctx = registry.ProviderContext(home=home, environ=env, store_id=store_id, database=database)
    return registry.build_providers(config, ctx, wrap_async=wrap_async)


def _reconcile_other_stores(environ: dict[str, str], store_id: str, database: str) -> None:
    """Kill and release what the local files of a deleted database left behind."""
    from intercloud.providers.local import abandon_other_stores
    from intercloud.providers.local_config import LocalConfig

    for root in abandon_other_stores(LocalConfig.from_env(environ), store_id, database):
        log.warning("the database of %s is gone: its processes killed, capacity released", root)


class _Stop:
    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


def _one_line(exc: BaseException) -> str:
    raw = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    text = " ".join(raw.split()) or type(exc).__name__
    return text if len(text) <= 400 else text[:397] + "..."


def run_daemon(
    home: Path,
    db_url: str | None = None,
    idle_exit_s: float | None = None,
    providers: Mapping[str, Provider] | None = None,
) -> int:
    """Run the control loop until idle or told to stop; return an exit status (0; 1 if
    it could not start, the reason in ``daemon.error``; 3 if another daemon already holds
    the lock of ``home``). See the module docstring."""
    home = Path(home).expanduser()
    private_home(home)
    lock_fd = _open_lock(home / LOCK_FILE)
    if not _try_lock(lock_fd):
        os.close(lock_fd)
        log.info("another daemon holds %s", home / LOCK_FILE)
        return 3
    pid = os.getpid()
    stop = _Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        (home / ERROR_FILE).unlink(missing_ok=True)
        try:
            store, reconciler, idle_exit_s, leader = _start(home, db_url, idle_exit_s, providers)
        except Exception as exc:  # one line per failed start, never a traceback
            reason = _one_line(exc)
            log.error("cannot start: %s", reason)
            _write_private(home / ERROR_FILE, reason + "\n")
            return 1
        record = f"{pid} {proc_start_time(pid) or 0}\n{store.store_id()}\n{store.name}\n"
        _write_private(home / PID_FILE, record)  # ready
        log.info("daemon %s started on %s", pid, store.name)
        still_ours = _database_watch(store, db_url or _default_url(home))
        try:
            _loop(reconciler, stop, idle_exit_s, still_ours, leader)
        finally:
            leader.release()
            reconciler.close()
        store.close()
        return 0
    finally:
        recorded = _read_pid(home)
        if recorded is not None and recorded.pid == pid:
            with contextlib.suppress(OSError):
                (home / PID_FILE).unlink()
        os.close(lock_fd)  # releases the lock last


def _start(
    home: Path,
    db_url: str | None,
    idle_exit_s: float | None,
    providers: Mapping[str, Provider] | None,
) -> tuple[Any, Any, float, Leadership]:
    """Everything that may fail at start: settings, the store, providers, the first try
    of the lease (and recovery if it leads)."""
    from intercloud import settings
    from intercloud.control.crashpoints import crashpoint_from_env
    from intercloud.control.leader import LeaderLease
    from intercloud.control.reconciler import Reconciler
    from intercloud.store import database_url, open_store

    settings.check_all()
    if idle_exit_s is None:
        idle_exit_s = settings.idle_exit_s()
    store = open_store(db_url or database_url(home))
    try:
        store_id = store.store_id()
        live = None
        config = None
        checkpoint_root: str | None = None
        down_after_s: float | None = None
        crash = crashpoint_from_env()
        if providers is None:
            from intercloud.config import load_config
            from intercloud.control.live import LiveCapacity

            env = {**os.environ, "INTERCLOUD_HOME": str(home)}
            config = load_config(env, home)
            checkpoint_root = config.checkpoint_dir
            down_after_s = config.failover.down_after_s
            live = LiveCapacity(store, config, home, crashpoint=crash)
            providers = build_providers(
                env, store_id=store_id, database=store.name, wrap_async=live.add
            )
            if not live.providers:
                live = None
            _reconcile_other_stores(env, store_id, store.name)
        reconciler = Reconciler(store, providers, crashpoint=crash)
        reconciler.ctx.checkpoint_root = checkpoint_root
        if down_after_s is not None:
            reconciler.ctx.down_after_s = down_after_s
        contracts: tuple[Any, ...] = ()
        if live is not None:
            live.start()
            live.attach(reconciler)
            contracts = tuple(live.settings.policy.contracts)
        elif config is not None:
            from intercloud.control.fleet_settings import fleet_settings

            contracts = tuple(fleet_settings(config, providers).policy.contracts)
        _keep_ledger(reconciler, store, contracts)
        lease = LeaderLease(store, ttl_s=settings.leader_ttl_s())
        _succeed_last_holder(home, store, lease.holder)
        leader = Leadership(lease, _recovery(reconciler, live))
        leader.leads()  # a daemon alone on its database is recovered before it is ready
    except BaseException:
        store.close()
        raise
    return store, reconciler, idle_exit_s, leader


def _keep_ledger(reconciler: Any, store: Any, contracts: tuple[Any, ...]) -> None:
    """Add the ``ledger`` step: the spend ledger persisted as time passes
    (``contracts/accrual.py``), every ``$INTERCLOUD_LEDGER_EVERY_S`` seconds."""
    from intercloud import settings
    from intercloud.contracts.accrual import LedgerAccrual

    step = LedgerAccrual(store, contracts, every_s=settings.ledger_every_s())
    reconciler.steps.append(("ledger", step))


def _succeed_last_holder(home: Path, store: Any, holder: str) -> None:
    """Let the lease of this home's previous daemon go now rather than when it runs out:
    it is dead (this daemon holds the home's lock), so a daemon restarted on its home
    leads at once. Only a lease still held by that holder's name is touched."""
    from intercloud.control.leader import CONTROL_LOOP_LEASE
    from intercloud.store import StoreError

    path = home / HOLDER_FILE
    old = ""
    with contextlib.suppress(OSError):
        old = path.read_text().strip()
    if old and old != holder:
        with contextlib.suppress(StoreError):  # unreachable: it runs out on its own
            if store.release_lease(CONTROL_LOOP_LEASE, old):
                log.info("released the lease of this home's previous daemon (%s)", old)
    _write_private(path, holder + "\n")


def _recovery(reconciler: Any, live: Any) -> Callable[[], None]:
    """What a daemon does when it gains the lease: the instances first (their nodes'
    capacity), the local nodes another home's dead leader was starting on this host
    (``control.takeover``), then the jobs' nodes."""
    from intercloud.control.takeover import adopt_other_homes_starts

    def recover() -> None:
        if live is not None:
            live.recover()
        adopt_other_homes_starts(reconciler.store, reconciler.providers)
        reconciler.recover()

    return recover


class _ErrorLog:
    """Logs a failing step's traceback once; the same failure again is one line at most
    every ``quiet_s`` seconds (a step that fails forever must not flood the log)."""

    def __init__(self, quiet_s: float = 60.0) -> None:
        self.quiet_s = quiet_s
        self.last = ""
        self.last_at = 0.0
        self.repeated = 0

    def report(self, exc: Exception) -> None:
        text = _one_line(exc)
        now = time.monotonic()
        if text != self.last:
            log.exception("reconcile step failed")
            self.last, self.last_at, self.repeated = text, now, 0
            return
        self.repeated += 1
        if now - self.last_at >= self.quiet_s:
            log.error("reconcile step failed again (%d times): %s", self.repeated, text)
            self.last_at, self.repeated = now, 0


def _default_url(home: Path) -> str:
    from intercloud.store import database_url

    return database_url(home)


def _database_watch(store: Any, url: str, every_s: float = 1.0) -> Callable[[], bool]:
    """A check that the daemon's database is still the one it started on: a SQLite file
    still at its path (same inode; a stat per call) and, every ``every_s`` seconds, the
    same store id in it. A daemon whose database was deleted, replaced or emptied serves
    nobody: it gives way to one for the new database (which reconciles the old files)."""
    from intercloud.store import StoreError
    from intercloud.store.engine import sqlite_file
    from intercloud.store.repository import STORE_ID_SETTING

    path = sqlite_file(url)
    first = os.stat(path) if path is not None else None
    store_id = store.store_id()
    checked = [time.monotonic()]

    def same() -> bool:
        if path is not None and first is not None:
            try:
                now = os.stat(path)
            except FileNotFoundError:
                return False
            if (now.st_dev, now.st_ino) != (first.st_dev, first.st_ino):
                return False
        if time.monotonic() - checked[0] >= every_s:
            checked[0] = time.monotonic()
            try:
                return bool(store.get_setting(STORE_ID_SETTING) == store_id)
            except StoreError:
                return True  # unreachable is not replaced: the loop retries
        return True

    return same


def _loop(
    reconciler: Any,
    stop: _Stop,
    idle_exit_s: float,
    database_is_ours: Callable[[], bool],
    leader: Leadership | None = None,
) -> None:
    """Step while leading (``leader`` None: always); stand by otherwise."""
    from intercloud.store import StoreError

    sleep = SLEEP_MIN_S
    idle_since = time.monotonic()
    repeats = _ErrorLog()
    while not stop.requested:
        if not database_is_ours():
            log.warning("the database was deleted, replaced or emptied: exiting")
            break
        try:
            if leader is not None and not leader.leads():
                if _standby_busy(reconciler):
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since >= idle_exit_s:
                    log.info("standby idle for %.0f s: exiting", idle_exit_s)
                    break
                _nap(stop, leader.renew_s)
                sleep = SLEEP_MIN_S
                continue
            changed = reconciler.step()
        except StoreError as exc:
            log.warning("store unavailable: %s", exc)
            changed, sleep = False, SLEEP_MAX_S * 5
        except Exception as exc:
            repeats.report(exc)
            changed, sleep = False, SLEEP_MAX_S * 5
        now = time.monotonic()
        if reconciler.busy or changed:
            idle_since = now
        elif now - idle_since >= idle_exit_s:
            log.info("idle for %.0f s: exiting", idle_exit_s)
            break
        sleep = SLEEP_MIN_S if changed else min(SLEEP_MAX_S, sleep * 1.5)
        time.sleep(sleep)


def _standby_busy(reconciler: Any) -> bool:
    """A standby stays up while the database has work its leader might leave behind."""
    from intercloud.control.reconciler import NON_TERMINAL

    return bool(reconciler.store.list_workloads(states=NON_TERMINAL))


def _nap(stop: _Stop, seconds: float) -> None:
    """Sleep ``seconds``, waking early on a stop request."""
    until = time.monotonic() + seconds
    while not stop.requested and (left := until - time.monotonic()) > 0:
        time.sleep(min(left, SLEEP_MAX_S))


def _write_private(path: Path, text: str) -> None:
    write_atomic(str(path), text)  # 0600 from its creation


# -- managing it from the CLI ------------------------------------------------------------
@contextlib.contextmanager
def _spawn_lock(home: Path) -> Iterator[None]:
    fd = _open_lock(home / SPAWN_LOCK_FILE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _wanted_database(home: Path, db_url: str | None) -> str:
    from intercloud.store import database_url
    from intercloud.store.engine import database_name

    return database_name(db_url or database_url(home))


def check_daemon_database(
    home: Path, db_url: str | None = None, *, store_id: str | None = None
) -> int | None:
    """The pid of the running daemon of ``home`` if it serves the caller's database
    (``db_url``, else ``INTERCLOUD_DB_URL``, else the home's SQLite file), None if none is
    ready. ``DaemonError`` naming both databases if it serves another one. A daemon that
    serves a database of the same name but another ``store_id`` (the caller's was deleted
    and created again under it) is stopped, and None returned: its database is gone."""
    home = Path(home).expanduser()
    running = _running(home)
    if running is None:
        return None
    wanted = _wanted_database(home, db_url)
    if running.database and running.database != wanted:
        raise DaemonError(
            f"the daemon of {home} (pid {running.pid}) serves {running.database}, not "
            f"{wanted}: stop it (intercloud daemon stop) or give this database its own "
            "INTERCLOUD_HOME"
        )
    if store_id is not None and running.store_id and running.store_id != store_id:
        log.info("the daemon of %s serves a replaced database: stopping it", home)
        stop_daemon(home)
        return None
    return running.pid


def ensure_daemon(
    home: Path,
    db_url: str | None = None,
    start_timeout_s: float = 30.0,
    *,
    store_id: str | None = None,
) -> int:
    """The pid of the daemon of ``home``, started (detached) if none runs.

    ``db_url`` (else ``INTERCLOUD_DB_URL``, else the home's SQLite file) is passed to a
    newly started daemon; a running one serving another database is a ``DaemonError``,
    one serving a replaced database (``store_id`` differs) is restarted
    (``check_daemon_database``). Race-free: concurrent callers serialise on
    ``daemon.spawn`` and all get the one daemon's pid. ``DaemonError`` with the reason
    (one line) if the daemon exits before it is ready, or is not ready within
    ``start_timeout_s``.
    """
    home = Path(home).expanduser()
    pid = check_daemon_database(home, db_url, store_id=store_id)
    if pid is not None:
        return pid
    private_home(home)
    with _spawn_lock(home):
        pid = check_daemon_database(home, db_url, store_id=store_id)
        if pid is not None:
            return pid
        child = None
        if not _lock_held(home / LOCK_FILE):  # else one is starting: wait for it
            child = _spawn(home, db_url)
        deadline = time.monotonic() + start_timeout_s
        while time.monotonic() < deadline:
            pid = check_daemon_database(home, db_url, store_id=store_id)
            if pid is not None:
                return pid
            exited = child is None or child.poll() is not None
            if exited and not _lock_held(home / LOCK_FILE):
                if child is not None and child.returncode == 3:
                    child = _spawn(home, db_url)  # lost a race to one that is gone now
                else:
                    raise DaemonError(f"the daemon could not start: {_start_error(home)}")
            time.sleep(0.01)
        raise DaemonError(
            f"the daemon did not start within {start_timeout_s:g} s; see {home / LOG_FILE}"
        )


def _spawn(home: Path, db_url: str | None) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["INTERCLOUD_HOME"] = str(home)
    if db_url:
        env["INTERCLOUD_DB_URL"] = db_url
    out = open_private_append(home / LOG_FILE)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", MODULE, "--home", str(home.absolute())],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(out)


def _start_error(home: Path) -> str:
    """Why the last daemon of ``home`` did not start: ``daemon.error``, else the last line
    of its log."""
    with contextlib.suppress(OSError):
        text = (home / ERROR_FILE).read_text().strip()
        if text:
            return text.splitlines()[0]
    with contextlib.suppress(OSError):
        with open(home / LOG_FILE, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))
            lines = [x for x in f.read().decode(errors="replace").splitlines() if x.strip()]
        if lines:
            return f"{lines[-1].strip()} (see {home / LOG_FILE})"
    return f"it exited without a reason; see {home / LOG_FILE}"


def stop_daemon(home: Path, timeout_s: float = 10.0) -> bool:
    """Ask the daemon of ``home`` to stop (SIGTERM: it finishes its step), SIGKILL it
    after ``timeout_s``; True if one was running. Returns once its lock is free. Only a
    process verified to be this home's daemon is ever signalled; a daemon still starting
    is waited for (up to ``timeout_s``) first."""
    home = Path(home).expanduser()
    running = _running(home)
    deadline = time.monotonic() + timeout_s
    while running is None and _lock_held(home / LOCK_FILE) and time.monotonic() < deadline:
        time.sleep(0.02)  # starting (or exiting): wait for it to be ready or gone
        running = _running(home)
    if running is None:
        return False
    _signal(running.pid, running.start_time, home, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _lock_held(home / LOCK_FILE):
        if time.monotonic() >= deadline:
            _signal(running.pid, running.start_time, home, signal.SIGKILL)
            deadline = time.monotonic() + timeout_s
        if not _is_daemon_of(running.pid, running.start_time, home):
            break  # it is gone; whoever holds the lock now is not the one we stopped
        time.sleep(0.01)
    return True


def daemon_status(home: Path) -> dict[str, Any]:
    """``{"running", "pid", "home", "database", "store_id", "log"}`` (``database``: the
    one the running daemon serves, None when none runs)."""
    home = Path(home).expanduser()
    running = _running(home)
    return {
        "running": running is not None or _lock_held(home / LOCK_FILE),
        "pid": running.pid if running else None,
        "home": str(home),
        "database": running.database.removeprefix("database ") if running else None,
        "store_id": running.store_id if running else None,
        "log": str(home / LOG_FILE),
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m intercloud.control.daemon [--home HOME]``: run in the foreground for
    ``HOME`` (default ``$INTERCLOUD_HOME``) and ``$INTERCLOUD_DB_URL``. A bad setting is
    one line on stderr and in ``daemon.error`` and exit 2, never a traceback; so is a bad
    ``config.yaml``."""
    from intercloud import settings

    args = list(sys.argv if argv is None else argv)[1:]
    if len(args) == 2 and args[0] == "--home":
        home = Path(args[1]).expanduser()
    elif args:
        sys.stderr.write("usage: python -m intercloud.control.daemon [--home HOME]\n")
        return 2
    else:
        try:
            home = settings.check_home()
        except settings.SettingError as exc:
            sys.stderr.write(f"intercloud daemon: {exc}\n")
            return 2
    from intercloud.config import ConfigError, load_config

    try:
        settings.check_all()
        load_config(os.environ, home)  # config.yaml: refused here, never half-applied
    except (settings.SettingError, ConfigError) as exc:  # bad input: one line, exit 2
        sys.stderr.write(f"intercloud daemon: {exc}\n")
        with contextlib.suppress(OSError):  # for `run`, which started this daemon
            private_home(home)
            _write_private(home / ERROR_FILE, f"{exc}\n")
        return 2
    logging.basicConfig(
        level=settings.log_level(),
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # a line per migration step
    from intercloud.gc_tuning import tune_gc

    tune_gc()
    return run_daemon(home, os.environ.get("INTERCLOUD_DB_URL") or None)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
