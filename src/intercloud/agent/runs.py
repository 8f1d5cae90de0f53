"""One assignment on the node, kept on disk so a restarted agent knows what it did.

Each assignment gets ``HOME/runs/<key>/`` (0700), which is also the node directory of
``providers.local_shim`` (the local provider's node supervisor, reused as it is)::

    assignment.json   the assignment as received (written before anything runs)
    spec.json         what the shim runs: written once, right before the one spawn
    node.lock, ready, pid, exit_code, shim.err    the shim's own files
    node.log          stdout + stderr with the shim's "== ... ==" marker lines
    work/             the working directory (unless the assignment names one)
    sent              log bytes the server has acknowledged
    kill              present once SIGTERM was sent (the end is reported as killed)
    reported          the last state the server acknowledged (started, exited, killed)

Rules that make "never run twice" hold across agent restarts: a run directory is
created for a key once; ``spec.json`` exists iff the shim was (about to be) spawned, and
the agent holds the node lock from before the spawn (the shim inherits it), so after a
restart "lock free and no exit_code" means the run is gone, never "not yet started".
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from intercloud.agent.protocol import Assignment, ReportState
from intercloud.providers import local_shim
from intercloud.providers.local_shim import (
    EXIT_SHIM_ERROR,
    private_mkdir,
    proc_start_time,
    signal_if,
    write_atomic,
)
from intercloud.providers.node_env import base_env

SHIM = Path(local_shim.__file__)


class Run:
    """The on-disk record and process of one assignment."""

    def __init__(self, home: Path, assignment: Assignment) -> None:
        self.assignment = assignment
        self.key = assignment.key
        self.dir = home / "runs" / quote(self.key, safe="")
        self.home = home
        self._popen: subprocess.Popen[bytes] | None = None

    # -- what the disk says -------------------------------------------------------------
    @classmethod
    def load_all(cls, home: Path) -> list[Run]:
        """Every run recorded under ``home`` (oldest first)."""
        runs_dir = home / "runs"
        if not runs_dir.is_dir():
            return []
        out = []
        for d in sorted(runs_dir.iterdir(), key=lambda p: p.stat().st_mtime):
            try:
                data = json.loads((d / "assignment.json").read_text())
                out.append(cls(home, Assignment.from_json(data)))
            except (OSError, ValueError):
                continue  # a half-created directory: nothing ran from it
        return out

    def exists(self) -> bool:
        return (self.dir / "assignment.json").exists()

    @property
    def started(self) -> bool:
        return (self.dir / "spec.json").exists()

    @property
    def reported(self) -> ReportState | None:
        try:
            return ReportState((self.dir / "reported").read_text().strip())
        except (OSError, ValueError):
            return None

    @property
    def finished(self) -> bool:
        """The server knows how it ended: nothing left to do for it."""
        return self.reported in (ReportState.EXITED, ReportState.KILLED)

    @property
    def kill_sent(self) -> bool:
        return (self.dir / "kill").exists()

    @property
    def log_path(self) -> Path:
        return self.dir / "node.log"

    @property
    def sent(self) -> int:
        try:
            return int((self.dir / "sent").read_text())
        except (OSError, ValueError):
            return 0

    def mark_sent(self, offset: int) -> None:
        write_atomic(str(self.dir / "sent"), str(offset))

    def mark_reported(self, state: ReportState) -> None:
        write_atomic(str(self.dir / "reported"), state.value)

    def pid(self) -> int | None:
        """The shim's pid while that very process lives (pid and start time checked)."""
        try:
            pid_text, start_text = (self.dir / "pid").read_text().split()
        except (OSError, ValueError):
            return None
        pid = int(pid_text)
        return pid if proc_start_time(pid) == int(start_text) else None

    def exit_code(self) -> int | None:
        """The exit code once the run is over, else None. A run whose shim is gone
        without recording one ended with ``EXIT_SHIM_ERROR`` (recorded now)."""
        path = self.dir / "exit_code"
        try:
            return int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
        if not self.started:
            return None
        if self._popen is not None and self._popen.poll() is None:
            return None
        if self._lock_held():
            return None
        with contextlib.suppress(OSError):  # the shim may have written it meanwhile
            return int(path.read_text().split()[0])
        write_atomic(str(path), f"{EXIT_SHIM_ERROR}\n")
        with contextlib.suppress(OSError), self.log_path.open("ab") as f:
            f.write(b"intercloud-agent: the node's supervisor vanished without an exit code\n")
        return EXIT_SHIM_ERROR

    def _lock_held(self) -> bool:
        try:
            fd = os.open(self.dir / "node.lock", os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
        except OSError:
            return True
        finally:
            os.close(fd)  # also drops the lock if we took it

    # -- acting -------------------------------------------------------------------------
    def create(self) -> None:
        """Record the assignment (before anything runs)."""
        private_mkdir(str(self.dir))
        write_atomic(str(self.dir / "assignment.json"), json.dumps(self.assignment.to_json()))

    def start(self, environ: dict[str, str]) -> int:
        """Spawn the shim for this assignment, once ever; returns its pid.
        RuntimeError when this run was started before."""
        if self.started:
            raise RuntimeError(f"assignment {self.key} was started before")
        a = self.assignment
        cwd = a.cwd or str(self.dir / "work")
        private_mkdir(cwd)
        env = node_env(a, environ, self.home)
        private_mkdir(env["INTERCLOUD_CHECKPOINT_DIR"])
        spec = {
            "job_id": a.job_id,
            "attempt": a.attempt,
            "rank": a.rank,
            "setup": a.setup,
            "run": a.run,
            "env": env,
            "cwd": cwd,
            "sync": [],
            "log_path": str(self.log_path),
            "grace_s": a.grace_s,
        }
        lock_fd = os.open(self.dir / "node.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise RuntimeError(f"assignment {self.key} is running") from None
                raise
            write_atomic(str(self.dir / "spec.json"), json.dumps(spec))
            err = os.open(
                self.dir / "shim.err", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600
            )
            try:
                self._popen = subprocess.Popen(
                    [sys.executable, "-I", "-S", str(SHIM), str(self.dir), str(lock_fd)],
                    cwd=self.dir,
                    env={"PATH": environ.get("PATH", os.defpath)},
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    pass_fds=(lock_fd,),
                    start_new_session=True,
                )
            finally:
                os.close(err)
        finally:
            os.close(lock_fd)  # the shim holds the lock through its inherited descriptor
        start = proc_start_time(self._popen.pid)
        if start is not None and not (self.dir / "pid").exists():  # else the shim wrote it
            write_atomic(str(self.dir / "pid"), f"{self._popen.pid} {start}\n")
        return self._popen.pid

    def kill(self) -> bool:
        """Ask the shim to stop the node (SIGTERM; it forwards it to the node's process
        group and sends SIGKILL after ``grace_s``). True once asked; False when the shim
        is not ready for signals yet (ask again)."""
        if not (self.dir / "ready").exists():
            if self.started and self.exit_code() is None:
                return False
        else:
            pid = self.pid()
            if pid is not None:
                start = proc_start_time(pid)
                if not signal_if(pid, lambda: proc_start_time(pid) == start, signal.SIGTERM):
                    return False
        with contextlib.suppress(FileExistsError):
            os.close(os.open(self.dir / "kill", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return True

    def reap(self) -> None:
        """Collect our shim child if it has exited (no zombie left behind)."""
        if self._popen is not None:
            self._popen.poll()


def node_env(assignment: Assignment, environ: dict[str, str], home: Path) -> dict[str, str]:
    """The node's environment, by the local provider's rule: the machine's base
    (``node_env.base_env``, with this interpreter's folder first on ``PATH``), then the
    assignment's ``env`` (the control plane's variables win). A default
    ``INTERCLOUD_CHECKPOINT_DIR`` under the agent's home when the control plane sent
    none."""
    env = base_env(environ)
    env.setdefault("PATH", os.defpath)
    bindir = os.path.dirname(sys.executable)
    if env["PATH"].split(os.pathsep)[0] != bindir:
        env["PATH"] = os.pathsep.join(p for p in (bindir, env["PATH"]) if p)
    env.update(assignment.env)
    env.setdefault(
        "INTERCLOUD_CHECKPOINT_DIR",
        str(home / "checkpoints" / quote(assignment.job_id, safe="")),
    )
    return env
