"""What runs inside the Ray cluster: one ``NodeRunner`` actor per rank of a gang.

Plain Python (no ``ray`` import): the provider wraps the class with ``ray.remote`` when
it starts a node, so the module must be importable on the cluster's nodes (intercloud
installed there, as on any provisioned node). The actor runs the node's ``setup`` then
``run`` in a new session (its own process group), appends their output to a log on its
own node, and answers the provider's questions: exit code, log bytes since an offset,
terminate. It outlives a restart of the control loop (a detached, named actor).

A rank's processes never outlive its actor: each step runs beside a watchdog
(``WATCHDOG``) that SIGKILLs the step's process
group once the actor's process is gone. Ray ends the actor when its node dies, or when
the head has been gone for the GCS reconnect timeout; without the watchdog the step (in
a session of its own) would run on, and a job resumed elsewhere would run twice.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from intercloud.providers.node_env import base_env

#: How many log bytes one ``read`` returns at most.
READ_CHUNK = 1 << 20


class NodeRunner:
    """One node of one attempt. ``start`` once; the other methods any time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._exit: int | None = None
        self._stopping = False
        self._log = Path(tempfile.mkdtemp(prefix="intercloud-ray-")) / "node.log"
        self._log.touch()

    def start(self, setup: str | None, run: str, env: Mapping[str, str], workdir: str) -> int:
        """Run ``setup`` then ``run`` (bash) in ``workdir`` with ``env`` over this node's
        base environment (``node_env.base_env``, the actor's interpreter first on
        ``PATH``); returns the pid of the first step."""
        full = base_env(os.environ)
        bindir = os.path.dirname(sys.executable)
        full["PATH"] = os.pathsep.join(p for p in (bindir, full.get("PATH", os.defpath)) if p)
        full.update(env)
        if "CUDA_VISIBLE_DEVICES" not in full and "CUDA_VISIBLE_DEVICES" in os.environ:
            # the GPUs Ray gave this actor (from its bundle), not the node's others
            full["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
        os.makedirs(workdir, mode=0o700, exist_ok=True)
        ckpt = full.get("INTERCLOUD_CHECKPOINT_DIR")
        if ckpt:
            os.makedirs(ckpt, mode=0o700, exist_ok=True)
        steps = [("setup", setup)] if setup else []
        steps.append(("run", run))
        started = threading.Event()
        threading.Thread(
            target=self._steps, args=(steps, full, workdir, started), daemon=True
        ).start()
        started.wait(30)
        proc = self._proc
        return proc.pid if proc is not None else 0

    def _steps(
        self,
        steps: list[tuple[str, str]],
        env: dict[str, str],
        cwd: str,
        started: threading.Event,
    ) -> None:
        code = 0
        with open(self._log, "ab") as out:
            for name, script in steps:
                out.write(f"== {name} ==\n".encode())
                out.flush()
                with self._lock:
                    if self._stopping:
                        code = 143
                        break
                    self._proc = subprocess.Popen(
                        ["bash", "-c", script],
                        cwd=cwd,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                _watch(os.getpid(), self._proc.pid)
                started.set()
                code = self._proc.wait()
                if code < 0:
                    code = 128 - code
                if code != 0:
                    break
            out.write(f"== exit {code} ==\n".encode())
        with self._lock:
            self._exit = code
        started.set()

    def exit_code(self) -> int | None:
        """The node's exit code once both steps are over (None while one runs)."""
        with self._lock:
            return self._exit

    def read(self, offset: int) -> bytes:
        """Up to ``READ_CHUNK`` log bytes from ``offset``."""
        with open(self._log, "rb") as f:
            f.seek(offset)
            return f.read(READ_CHUNK)

    def terminate(self, grace_s: float) -> int | None:
        """SIGTERM the running step's process group, SIGKILL it after ``grace_s``; no
        later step starts. Returns the exit code (None if it could not be stopped)."""
        with self._lock:
            self._stopping = True
            proc = self._proc
        if proc is not None and proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            _signal_group(proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.exit_code() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.exit_code()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


#: The watchdog (module docstring), run by a bare interpreter (``-I -S``: no site, no
#: intercloud import, so it starts in milliseconds): until the group is empty, SIGKILL
#: it as soon as the owner process has died (or is a zombie).
WATCHDOG = """
import os, signal, sys, time
owner, pgid = int(sys.argv[1]), int(sys.argv[2])
def alive(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(l.startswith("State:") and l.split()[1] in "ZX" for l in f)
    except OSError:
        return False
while True:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        break
    except PermissionError:
        pass
    if not alive(owner):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
        break
    time.sleep(0.5)
"""


def _watch(owner: int, pgid: int) -> None:
    """Start the watchdog of process group ``pgid`` (a step) for process ``owner``."""
    subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", WATCHDOG, str(owner), str(pgid)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # not in the group it guards, nor in the actor's
    )
