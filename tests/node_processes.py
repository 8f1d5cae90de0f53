"""Finding the processes a local-provider root started (shared by provider and control
tests): shims by their argv, node processes by their checkpoint-dir or node-marker
environment (an escaped ``setsid`` child keeps both)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil


def processes_under(root: Path) -> list[psutil.Process]:
    """Live processes started for nodes under ``root`` (shims by argv, nodes by env).

    Only paths *inside* ``root`` count, so ``.../local`` never matches ``.../local2``."""
    inside = str(root).rstrip(os.sep) + os.sep
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.pid == os.getpid():
            continue
        try:
            mine = any(inside in part for part in proc.info["cmdline"] or ())
            env = proc.environ()
            mine = mine or env.get("INTERCLOUD_CHECKPOINT_DIR", "").startswith(inside)
            mine = mine or env.get("INTERCLOUD_NODE_MARKER", "").startswith(inside)
            if mine and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def leftovers_killed(root: Path, timeout_s: float = 10.0) -> list[str]:
    """Wait up to ``timeout_s`` for the node processes under ``root`` to be gone (a shim
    that wrote its exit code may still be exiting on a loaded machine), then SIGKILL
    whatever is left and describe it: ``[]`` means the test left nothing behind."""
    deadline = time.monotonic() + timeout_s
    left = processes_under(root)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = processes_under(root)
    described = []
    for proc in left:
        try:
            described.append(f"{proc.pid} {' '.join(proc.cmdline())[:200]}")
            proc.kill()
        except psutil.Error:
            continue
    return described
