"""The supervisor of one node of the local provider. Standard library only.

Run as ``python -I -S local_shim.py NODE_DIR [LOCK_FD]`` in its own session (the provider
starts it with ``start_new_session=True``), so it outlives the control loop and its exit
code never depends on who its parent is.

Contract:

- It holds an exclusive ``flock`` on ``NODE_DIR/node.lock`` for its whole life. The
  provider takes that lock *before* spawning and hands the locked descriptor over as
  ``LOCK_FD``, so "is some run of this node alive?" is a race-free non-blocking lock test.
  The descriptor is also inherited by ``setup``/``run``, so the lock stays held while any
  process of the node still runs.
- Once its signal handlers are installed it creates ``NODE_DIR/ready``: before that a
  SIGTERM would kill it without an exit code, so the provider waits for the file.
- It writes ``NODE_DIR/pid`` (``"<pid> <start_time>"``, start time as /proc stat field 22)
  atomically, copies the spec's ``sync`` pairs into place (``copy_into_place``; a failed
  copy ends the node with exit code 1, the reason in the log), then runs ``setup`` (if
  any) and, if it exited 0, ``run`` with
  ``bash -c`` in the spec's working directory, each in a fresh process group of the shim's
  session, stdin from /dev/null, stdout and stderr both appended to one log file (one
  combined log per node, so the interleaving of both streams is preserved). The log gets
  marker lines ``== <stamp> attempt N rank R: setup ==``, ``... run ==`` and
  ``... exit CODE ==``.
- SIGTERM/SIGINT/SIGHUP are forwarded as SIGTERM to the running step's process group;
  after ``grace_s`` seconds the group gets SIGKILL. A terminated node does not start its
  next step.
- Nothing escapes a node. On Linux the shim is a child subreaper
  (``PR_SET_CHILD_SUBREAPER``), so orphans of the node (double forks, ``setsid``
  daemons) are reparented to it rather than to init; every step runs with
  ``INTERCLOUD_NODE_MARKER=NODE_DIR`` (unique to this run of this node) in its
  environment. When the last step ends, everything that descends from the shim, lives in
  its session or carries its marker is SIGKILLed, repeatedly until none is left, and
  reaped (elsewhere only the last step's process group is killed): a node is over when
  its command is over. Background processes of ``setup`` live on into ``run``.
- Its last act is writing ``NODE_DIR/exit_code`` atomically (tmp + rename): the step's
  exit status, or 128 + signal number when the step died of a signal (shell convention),
  or 254 if the shim itself failed (its traceback is in ``NODE_DIR/shim.err``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

EXIT_LOCKED = 75  # another run of this node holds the lock: nothing was started
EXIT_SHIM_ERROR = 254  # the shim itself failed (traceback in NODE_DIR/shim.err)
#: Environment variable naming the node directory of the run a process belongs to.
NODE_MARKER_ENV = "INTERCLOUD_NODE_MARKER"
_PR_SET_CHILD_SUBREAPER = 36


def proc_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (/proc stat field 22); None if gone.

    Zombies count as gone. Linux only (None elsewhere).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see either nothing or all of it. The
    file is private (0600) from its creation, whatever the umask."""
    # pid and thread: two threads of one process (the API server's) never share a tmp
    tmp = f"{path}.tmp{os.getpid()}.{threading.get_ident()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)  # a leftover tmp file of a dead writer with this pid
    with open(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def copy_into_place(
    source: str, dest: str, skipped: list[str], stop: Callable[[], bool] = lambda: False
) -> None:
    """Copy file or folder ``source`` to ``dest`` (a folder's content is merged into
    ``dest``; nothing there is deleted). Every file is written to a temporary name and
    renamed over its target, so a reader (another node sharing ``dest``) sees the old or
    the new file, never a partial one. Symlinks inside a folder are copied as symlinks;
    other special files are appended to ``skipped``; a folder that is ``dest`` itself
    (a source that contains its destination) is not descended into. ``stop()`` is asked
    before each file; True raises InterruptedError. Raises OSError."""
    mode = os.stat(source).st_mode
    if stat.S_ISREG(mode):
        os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
        _copy_file(source, dest)
        return
    if not stat.S_ISDIR(mode):
        raise OSError(errno.EINVAL, "not a regular file or folder")
    os.makedirs(dest, exist_ok=True)
    real_dest = os.path.realpath(dest)
    for root, dirs, files in os.walk(source):
        rel = os.path.relpath(root, source)
        target = dest if rel == "." else os.path.join(dest, rel)
        for name in list(dirs):
            path = os.path.join(root, name)
            if os.path.islink(path):
                dirs.remove(name)
                _copy_link(path, os.path.join(target, name))
            elif os.path.realpath(path) == real_dest:
                dirs.remove(name)
            else:
                os.makedirs(os.path.join(target, name), exist_ok=True)
        for name in files:
            if stop():
                raise InterruptedError(errno.EINTR, "stopped")
            path = os.path.join(root, name)
            kind = os.lstat(path).st_mode
            if stat.S_ISLNK(kind):
                _copy_link(path, os.path.join(target, name))
            elif stat.S_ISREG(kind):
                _copy_file(path, os.path.join(target, name))
            else:
                skipped.append(path)


def _copy_file(source: str, dest: str) -> None:
    tmp = f"{dest}.intercloud-tmp{os.getpid()}"
    try:
        shutil.copyfile(source, tmp)
        shutil.copymode(source, tmp)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _copy_link(source: str, dest: str) -> None:
    tmp = f"{dest}.intercloud-tmp{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(os.readlink(source), tmp)
    os.replace(tmp, dest)


def signal_if(pid: int, verify: Callable[[], bool], sig: int) -> bool:
    """Send ``sig`` to ``pid`` only if ``verify()`` says it is the process meant (pid and
    start time, command line, ...); through a pidfd where available, so the check cannot
    go stale between verifying and signalling. True if sent."""
    pidfd = -1
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return False  # no such process
    try:
        if not verify():
            return False
        if pidfd >= 0:
            signal.pidfd_send_signal(pidfd, sig)
        else:
            os.kill(pid, sig)
        return True
    except OSError:
        return False
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def private_mkdir(path: str, mode: int = 0o700) -> None:
    """Create ``path`` and its missing parents with exactly ``mode`` (whatever the umask).
    Directories that already exist are left as they are."""
    missing = []
    head = os.path.abspath(path)
    while not os.path.isdir(head):
        missing.append(head)
        parent = os.path.dirname(head)
        if parent == head:
            break
        head = parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(d, mode)
            os.chmod(d, mode)


def become_subreaper() -> bool:
    """Make this process the child subreaper of its descendants (Linux); True if it is."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _stat_fields(pid: str) -> list[bytes] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2 :].split()


def _has_marker(pid: str, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return marker in f.read().split(b"\0")
    except OSError:
        return False


def node_processes(marker: str, root_pid: int | None = None) -> list[int]:
    """Live processes of one run of a node (Linux, from /proc): those carrying
    ``INTERCLOUD_NODE_MARKER=marker`` and, when ``root_pid`` (its live shim) is given,
    every descendant of it and every member of its session. Never ``root_pid`` itself or
    the caller. Empty without /proc."""
    if not os.path.isdir("/proc"):
        return []
    me = os.getpid()
    tag = f"{NODE_MARKER_ENV}={marker}".encode()
    parent: dict[int, int] = {}
    found: set[int] = set()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in (me, root_pid):
            continue
        fields = _stat_fields(name)
        if fields is None or fields[0] in (b"Z", b"X"):
            continue
        pid = int(name)
        parent[pid] = int(fields[1])
        if (root_pid is not None and int(fields[3]) == root_pid) or _has_marker(name, tag):
            found.add(pid)
    roots = set(found) | ({root_pid} if root_pid is not None else set())
    for pid in parent:  # descendants of the shim, or of a marked process
        seen: set[int] = set()
        p = parent[pid]
        while p > 1 and p not in seen:
            if p in roots:
                found.add(pid)
                break
            seen.add(p)
            p = parent.get(p, 0)
    return sorted(found)


class _Shim:
    def __init__(self, node_dir: str, lock_fd: int, spec: dict[str, Any]) -> None:
        self.node_dir = node_dir
        self.lock_fd = lock_fd
        self.spec = spec
        self.grace_s = float(spec.get("grace_s", 10.0))
        self.child: subprocess.Popen[bytes] | None = None
        self.terminated = False
        self.syncing = False
        self.log_fd = -1

    # -- signals -----------------------------------------------------------------------
    def on_term(self, signum: int, frame: FrameType | None) -> None:
        if not self.terminated:
            self.terminated = True
            signal.alarm(max(1, int(self.grace_s + 0.999)))
        self._signal_child(signal.SIGTERM)
        if self.syncing:  # a copy may block for ever (a pseudo-file): abandon it, once
            self.syncing = False
            raise InterruptedError(errno.EINTR, "terminated")

    def on_alarm(self, signum: int, frame: FrameType | None) -> None:
        self._signal_child(signal.SIGKILL)

    def _signal_child(self, sig: int) -> None:
        if self.child is not None and self.child.returncode is None:
            with contextlib.suppress(OSError):
                os.killpg(self.child.pid, sig)

    # -- steps -------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = self.spec.get("env")
        return dict(os.environ) if env is None else dict(env)

    def marker(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        head = f"attempt {self.spec.get('attempt', 0)} rank {self.spec.get('rank', 0)}"
        os.write(self.log_fd, f"== {stamp} {head}: {text} ==\n".encode())

    def step(self, name: str, script: str) -> int:
        if self.terminated:
            return 128 + signal.SIGTERM
        self.marker(name)
        try:
            self.child = subprocess.Popen(
                ["bash", "-c", script],
                cwd=self.spec.get("cwd") or None,
                env={**self.env(), NODE_MARKER_ENV: self.node_dir},
                stdin=subprocess.DEVNULL,
                stdout=self.log_fd,
                stderr=self.log_fd,
                pass_fds=(self.lock_fd,),
                process_group=0,
            )
        except OSError as exc:
            os.write(self.log_fd, f"intercloud: cannot start {name}: {exc}\n".encode())
            return 127
        if self.terminated:  # a signal arrived while the child was being created
            self._signal_child(signal.SIGTERM)
        code = self.child.wait()
        return 128 - code if code < 0 else code

    def sync(self, pairs: list[list[str]]) -> int:
        """Copy each ``[SOURCE, DEST]`` into place (``copy_into_place``); 0, or 1 after
        writing why to the log."""
        if not pairs:
            return 0
        self.marker("sync")
        for source, dest in pairs:
            if self.terminated:
                return 128 + signal.SIGTERM
            skipped: list[str] = []
            try:
                self.syncing = True
                copy_into_place(source, dest, skipped, lambda: self.terminated)
            except InterruptedError:
                return 128 + signal.SIGTERM
            except OSError as exc:
                why = exc.strerror or str(exc)
                os.write(
                    self.log_fd, f"intercloud: cannot copy {source} to {dest}: {why}\n".encode()
                )
                return 1
            finally:
                self.syncing = False
            for path in skipped:
                os.write(
                    self.log_fd,
                    f"intercloud: skipped {path}: not a regular file, folder or symlink\n".encode(),
                )
        return 0

    def sweep(self) -> None:
        """Kill and reap whatever the steps left behind (see ``node_processes``).

        Repeated until a pass finds nothing, since a process may fork while we look.
        The session id and our pid cannot be reused while we (the leader) live, and
        orphans come to us as subreaper, so nothing outside the node is ever hit. Without
        /proc only the last step's process group is killed.
        """
        if not os.path.isdir("/proc"):
            if self.child is not None:
                with contextlib.suppress(OSError):
                    os.killpg(self.child.pid, signal.SIGKILL)
            return
        me = os.getpid()
        for _ in range(200):
            left = node_processes(self.node_dir, me)
            for pid in left:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            self.reap()
            if not left:
                return
            time.sleep(0.01)

    @staticmethod
    def reap() -> None:
        """Collect exited children (orphans reparented to us as subreaper)."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    def main(self) -> int:
        pid = os.getpid()
        start = proc_start_time(pid)
        pid_path = os.path.join(self.node_dir, "pid")
        if start is not None and not os.path.exists(pid_path):  # the provider wrote it first
            write_atomic(pid_path, f"{pid} {start}\n")
        log_path = self.spec["log_path"]
        private_mkdir(os.path.dirname(log_path))
        self.log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        code = self.sync(self.spec.get("sync") or [])
        setup = self.spec.get("setup")
        if setup and code == 0:
            code = self.step("setup", setup)
        if code == 0:
            code = self.step("run", self.spec["run"])
        ended = time.time()  # before the sweep: when the node's work really ended
        self.sweep()
        self.marker(f"exit {code}")
        os.close(self.log_fd)
        write_atomic(os.path.join(self.node_dir, "exit_code"), f"{code} {ended:.6f}\n")
        return 0


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: local_shim.py NODE_DIR [LOCK_FD]", file=sys.stderr)
        return 2
    node_dir = argv[1]
    if len(argv) == 3:
        lock_fd = int(argv[2])
    else:
        lock_fd = os.open(os.path.join(node_dir, "node.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:  # re-locking our own open file description succeeds; anyone else's fails
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return EXIT_LOCKED
    with open(os.path.join(node_dir, "spec.json")) as f:
        spec = json.load(f)
    shim = _Shim(node_dir, lock_fd, spec)
    become_subreaper()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, shim.on_term)
    signal.signal(signal.SIGALRM, shim.on_alarm)
    # From here on SIGTERM is handled (the provider waits for this file before signalling).
    os.close(os.open(os.path.join(node_dir, "ready"), os.O_WRONLY | os.O_CREAT, 0o600))
    try:
        return shim.main()
    except BaseException:  # record *an* exit so the node is never mistaken for LOST
        shim._signal_child(signal.SIGKILL)
        with contextlib.suppress(Exception):
            shim.sweep()
        write_atomic(os.path.join(node_dir, "exit_code"), f"{EXIT_SHIM_ERROR}\n")
        raise


if __name__ == "__main__":
    sys.exit(main(sys.argv))
