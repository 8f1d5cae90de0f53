"""The CLI as a user runs it: real ``intercloud`` processes on a temporary home.

``cli_env`` is the environment of such a process (the caller's, minus every
``INTERCLOUD_*`` setting, plus a home, a short idle exit and one local site of 8 CPUs);
``ic`` runs one command; ``stop_daemon`` ends the home's daemon and fails the test if a
node process outlived it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from node_processes import leftovers_killed

REPO = Path(__file__).resolve().parents[2]


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERCLOUD_")}
    env.update(
        INTERCLOUD_HOME=str(home),
        INTERCLOUD_DAEMON_IDLE_EXIT="3",
        INTERCLOUD_LOCAL_SITES="local/local,cpus=8",
    )
    env.update(extra)
    return env


def ic(
    home: Path, *args: str, timeout: float = 120, cwd: Path = REPO, **extra: str
) -> subprocess.CompletedProcess[str]:
    """``intercloud ARGS`` on ``home``; ``extra`` are environment variables."""
    return subprocess.run(
        [sys.executable, "-m", "intercloud", *args],
        env=cli_env(home, **extra),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        cwd=cwd,
    )


def stop_daemon(home: Path) -> None:
    """Stop the daemon of ``home``; fail if any node process outlives the test."""
    subprocess.run(
        [sys.executable, "-m", "intercloud", "daemon", "stop"],
        env=cli_env(home),
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert leftovers_killed(home / "local") == [], "node processes outlived the test"
