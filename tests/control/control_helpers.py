"""Helpers for the control-loop tests (imported by name: this folder has no package)."""

from __future__ import annotations

import time
from collections.abc import Callable

import yaml

from intercloud.control.reconciler import Reconciler
from intercloud.control.states import JobState
from intercloud.store import Store


class Crash(BaseException):
    """Raised by ``StopAt``: the in-process stand-in for the loop being SIGKILLed."""


class StopAt:
    """A crashpoint that raises ``Crash`` at the ``nth`` hit of ``name`` (1-based)."""

    def __init__(self, name: str, nth: int = 1) -> None:
        self.name, self.nth, self.hits = name, nth, 0

    def __call__(self, name: str) -> None:
        if name == self.name:
            self.hits += 1
            if self.hits == self.nth:
                raise Crash(f"{name} #{self.nth}")


def spec(
    run: str,
    nodes: int = 1,
    name: str = "job",
    max_restarts: int = 0,
    on_exit_codes: tuple[int, ...] = (),
    cpus: float | None = None,
    envs: dict[str, str] | None = None,
    **resources: object,
) -> str:
    """A native training spec for the local provider's CPU instance type."""
    res: dict[str, object] = {"instance_type": "local-cpu", **resources}
    if cpus is not None:
        res["cpus"] = f"{cpus:g}+"
    doc: dict[str, object] = {"kind": "training", "name": name, "num_nodes": nodes}
    doc["resources"] = res
    doc["run"] = run
    if envs:
        doc["envs"] = envs
    if max_restarts or on_exit_codes:
        restart: dict[str, object] = {"max_restarts": max_restarts}
        if on_exit_codes:
            restart["on_exit_codes"] = list(on_exit_codes)
        doc["restart"] = restart
    return yaml.safe_dump(doc, sort_keys=False)


def submit(store: Store, run: str, max_restarts: int = 0, **kwargs: object) -> int:
    """Submit ``spec(run, ...)``, copying max_restarts into the queue as a submitter does."""
    text = spec(run, max_restarts=max_restarts, **kwargs)  # type: ignore[arg-type]
    return store.submit("training", str(kwargs.get("name", "job")), text, max_restarts=max_restarts)


def run_until(
    rec: Reconciler, done: Callable[[], bool], timeout_s: float = 30.0, pause_s: float = 0.02
) -> None:
    """Step ``rec`` until ``done()``; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "the reconciler did not converge in time"
        if not rec.step():
            time.sleep(pause_s)


def all_terminal(store: Store, *job_ids: int) -> Callable[[], bool]:
    def done() -> bool:
        return all(store.get(j).state.terminal for j in job_ids)

    return done


def in_state(store: Store, job_id: int, state: JobState) -> Callable[[], bool]:
    return lambda: store.get(job_id).state is state
