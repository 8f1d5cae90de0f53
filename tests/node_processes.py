"""Finding the processes a local-provider root started (shared by provider and control
tests): shims by their argv, node processes by their checkpoint-dir or node-marker
environment (an escaped ``setsid`` child keeps both)."""

from __future__ import annotations

import os
from pathlib import Path

import psutil


def processes_under(root: Path) -> list[psutil.Process]:
    """Live processes started for nodes under ``root`` (shims by argv, nodes by env)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.pid == os.getpid():
            continue
        try:
            mine = any(str(root) in part for part in proc.info["cmdline"] or ())
            env = proc.environ()
            mine = mine or str(root) in env.get("INTERCLOUD_CHECKPOINT_DIR", "")
            mine = mine or env.get("INTERCLOUD_NODE_MARKER", "").startswith(str(root))
            if mine and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found
