"""Crashpoints: named places where the control loop may be made to die, for crash tests.

The reconciler calls ``crashpoint(name)`` at every phase boundary (after each store write
and each provider call). In production it does nothing. With

    INTERCLOUD_CRASHPOINTS="starting:0.05,finishing:0.1"   (or "*:0.02" for every name)
    INTERCLOUD_CRASH_SEED=7                                  (optional, default 0)
    INTERCLOUD_CRASH_LOG=/tmp/fired.log                      (optional)

each hit of a listed name SIGKILLs the calling process with that probability — no
cleanup, no ``finally``, exactly like a power cut of the loop. Before dying it appends
the name to ``INTERCLOUD_CRASH_LOG`` (fsynced), so a test can tell which phases it hit.
"""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Callable, Mapping

Crashpoint = Callable[[str], None]

#: The phases the reconciler reports (every name it passes to ``crashpoint``).
PHASES: tuple[str, ...] = (
    "placing",
    "provisioning",
    "starting",
    "started",
    "running",
    "exited",
    "finishing",
    "recovering",
    "cancelling",
    "adopting",
)


def no_crash(name: str) -> None:
    """The default crashpoint: does nothing."""


class RandomCrash:
    """SIGKILL the current process at a hit of ``name`` with ``probability[name]``
    (``probability["*"]`` for names not listed); deterministic for a given seed and
    sequence of hits."""

    def __init__(
        self, probability: Mapping[str, float], seed: int = 0, log_path: str | None = None
    ) -> None:
        self.probability = dict(probability)
        self.log_path = log_path
        self._rng = random.Random(seed)

    def __call__(self, name: str) -> None:
        p = self.probability.get(name, self.probability.get("*", 0.0))
        if p <= 0.0 or self._rng.random() >= p:
            return
        if self.log_path:
            fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, f"{name}\n".encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)


def parse_crashpoints(text: str) -> dict[str, float]:
    """``"starting:0.05,finishing:0.1"`` -> ``{"starting": 0.05, "finishing": 0.1}``.
    ValueError for a malformed entry or a probability outside [0, 1]."""
    out: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition(":")
        try:
            p = float(value) if sep else 1.0
        except ValueError:
            raise ValueError(f"bad crashpoint {item!r}: expected NAME:PROBABILITY") from None
        if not name or not 0.0 <= p <= 1.0:
            raise ValueError(f"bad crashpoint {item!r}: expected NAME:PROBABILITY in [0, 1]")
        out[name] = p
    return out


def crashpoint_from_env(environ: Mapping[str, str] | None = None) -> Crashpoint:
    """``RandomCrash`` as configured by ``INTERCLOUD_CRASHPOINTS`` (see the module
    docstring), or ``no_crash`` when it is unset or empty."""
    env = os.environ if environ is None else environ
    spec = env.get("INTERCLOUD_CRASHPOINTS", "").strip()
    if not spec:
        return no_crash
    seed = int(env.get("INTERCLOUD_CRASH_SEED") or 0)
    return RandomCrash(parse_crashpoints(spec), seed, env.get("INTERCLOUD_CRASH_LOG") or None)
