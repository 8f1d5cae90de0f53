"""Shared pieces of the benchmarks: machine facts and appending to bench/RESULTS.md."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "RESULTS.md"


def machine() -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        git = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                capture_output=True,
                cwd=REPO,
                check=False,
                text=True,
            ).stdout.strip()
            or "?"
        )
    except OSError:
        git = "?"
    load = (
        " ".join(Path("/proc/loadavg").read_text().split()[:3])
        if Path("/proc/loadavg").exists()
        else "?"
    )
    return {
        "arch": platform.machine(),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "git": git,
        "load": load,
    }


def python_reference_s(n: int = 2_000_000, tries: int = 3) -> float:
    """Seconds of a fixed pure-Python loop (best of ``tries``): this machine's speed for
    interpreted code now. The 2-core machines here differ by up to 2x between sessions
    (and within one, with their neighbours' load), so a figure from another day compares
    only after scaling by the ratio of this reference."""
    best = float("inf")
    for _ in range(tries):
        t = time.perf_counter()
        acc = 0
        for i in range(n):
            acc += i & 7
        best = min(best, time.perf_counter() - t)
    return best


def append_results(text: str) -> None:
    """Append one dated section (already rendered) to bench/RESULTS.md."""
    head = "" if RESULTS.exists() else "# Benchmark results\n\nAppended by scripts in bench/.\n"
    with RESULTS.open("a") as f:
        f.write(head + "\n" + text)
