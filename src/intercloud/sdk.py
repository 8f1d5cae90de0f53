"""The Python API a user scripts against; the CLI is a thin layer over it.

```python
from intercloud.sdk import Client
with Client() as ic:                            # $INTERCLOUD_HOME, embedded SQLite + local
    sub = ic.submit("examples/train-local-ddp.yaml")
    print(sub.plan.choice)                      # where it will run
    final = ic.wait(sub.job_id)                 # -> status dict; final["state"] == "SUCCEEDED"
    print("".join(ic.logs(sub.job_id, node=0)))
```

Contract: ``submit`` validates the spec against the catalog, checks that an enabled
provider can run it (else ``NotRunnable`` naming the cheapest provider that could), and
returns only after the submission is committed to the store; it then makes sure the
embedded daemon (the reconcile loop) is running. Every method raises a ``ValueError``
subclass (``SpecError``, ``NotRunnable``, ``InvalidRequest``) or ``KeyError``
(``UnknownWorkload``) for bad input, ``StoreError`` for an unusable database.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from intercloud.control.states import JobState
from intercloud.model import Workload
from intercloud.store import (
    Store,
    WorkloadRecord,
    database_url,
    intercloud_home,
    open_store,
)

if TYPE_CHECKING:  # the planner pulls in numpy: imported only where it is used
    from intercloud.scheduler.planner import PlanResult


class NotRunnable(ValueError):
    """No enabled provider can ever run the workload (one line, names who could). The CLI
    exits 1 for it ("nothing feasible"), as ``plan`` does, rather than 2 (bad input)."""


#: ``top`` for planning on the enabled (local) offerings: every placement, so one that
#: fits the finite sites is found even when cheaper ones never fit.
_ALL_PLACEMENTS = 1000


@dataclass(frozen=True)
class Submission:
    job_id: int
    name: str
    plan: PlanResult
    ignored_fields: tuple[str, ...]
    notes: tuple[str, ...]


def _money(x: float) -> str:
    return f"{x:,.2f}" if x >= 1 else f"{x:.4f}"


def _describe(data: dict[str, Any] | None) -> str | None:
    """A node event's data as words: ``attempt 1 rank 0 pid 4242 exit 17``."""
    if not data:
        return None
    keys = ("attempt", "rank", "host", "pid", "exit_code")
    words = [f"{k.replace('_code', '')} {data[k]}" for k in keys if data.get(k) is not None]
    return " ".join(words) or None


class Client:
    """Embedded client: the store at ``db_url`` (default: ``$INTERCLOUD_DB_URL`` or
    ``$INTERCLOUD_HOME/state.db``) and the providers enabled on this machine."""

    def __init__(
        self, home: Path | None = None, db_url: str | None = None, *, autostart: bool = True
    ) -> None:
        self.home = (home or intercloud_home()).expanduser()
        self.db_url = db_url or database_url(self.home)
        self.autostart = autostart
        self._store: Store | None = None

    # -- plumbing ------------------------------------------------------------------------
    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.db_url)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _local_provider(self) -> Any:
        from intercloud.providers.local import LocalProvider
        from intercloud.providers.local_config import LocalConfig

        return LocalProvider(LocalConfig.from_env())

    # -- submit ----------------------------------------------------------------------------
    def submit(self, spec: Path | str, *, text: str | None = None) -> Submission:
        """Validate, check runnability, store durably, make sure the daemon runs."""
        from intercloud.catalog import Catalog
        from intercloud.catalog.loader import load_catalog
        from intercloud.control.never_fits import split_fitting
        from intercloud.scheduler.hints import exactness_hint
        from intercloud.scheduler.planner import Planner
        from intercloud.specs import SpecError, load_spec_text, read_spec_text

        catalog = load_catalog()
        # Read once (bounded, regular files only): what is validated is what is stored.
        spec_text = read_spec_text(Path(spec)) if text is None else text
        loaded = load_spec_text(spec_text, catalog, source=str(spec))
        workload = loaded.workload
        if not (workload.run or "").strip():
            # plan and validate accept a spec without commands; running one needs them.
            raise SpecError("run", "required to submit a job: the commands it runs", str(spec))
        offerings = self._local_provider().offerings()
        plan = Planner(Catalog.from_offerings(offerings)).plan(workload, top=_ALL_PLACEMENTS)
        # The planner sees unbounded offerings; the local sites are finite.
        fits, too_big = split_fitting(
            workload, [c for c in (plan.choice, *plan.alternatives) if c is not None], offerings
        )
        if not fits:
            enabled = Planner(Catalog.from_offerings(offerings))
            others = frozenset(catalog.providers) - {o.provider for o in offerings}
            raise NotRunnable(
                self._not_runnable(workload, plan, Planner(catalog), too_big, others)
                + exactness_hint(workload, enabled)
            )
        plan = replace(plan, choice=fits[0], alternatives=tuple(fits[1:]))
        restart = getattr(workload, "restart", None)
        job_id = self.store.submit(
            workload.kind,
            workload.name,
            spec_text,
            spec_format=loaded.source_format,
            tenant=workload.tenant,
            priority=workload.priority,
            max_restarts=restart.max_restarts if restart else 0,
        )
        if self.autostart:
            self.ensure_daemon()
        return Submission(job_id, workload.name, plan, loaded.ignored_fields, loaded.notes)

    @staticmethod
    def _not_runnable(
        workload: Workload,
        plan: PlanResult,
        everywhere: Any,
        too_big: Sequence[str] = (),
        others: frozenset[str] | None = None,
    ) -> str:
        """Why nothing enabled can run ``workload``, and the cheapest of the ``others``
        (providers not enabled here) that could."""
        reasons = [f"{e.provider}: {e.reason}" for e in plan.excluded]
        reasons += [f"{r}: the gang can never run there" for r in too_big]
        why = "; ".join(reasons) or "no offering"
        elsewhere = everywhere.plan(workload, others).choice if others != frozenset() else None
        if elsewhere is None:
            return f"no provider can run '{workload.name}' ({why})"
        p = elsewhere
        return (
            f"no enabled provider can run '{workload.name}' ({why}); the cheapest that could "
            f"is {p.provider} {p.instance_type} x{p.nodes} in {p.region} at "
            f"{_money(p.hourly_usd)} USD/h"
        )

    # -- read ------------------------------------------------------------------------------
    def status(self, job_id: int) -> dict[str, Any]:
        """The job's record, placement, attempts, nodes and whole event history."""
        st = self.store
        w = st.get(job_id)
        placement = w.placement or {}
        return {
            **self._summary(w),
            "instance_type": placement.get("instance_type"),
            "nodes": placement.get("nodes"),
            "placement": placement or None,
            "attempts": [
                {
                    "attempt": a.attempt,
                    "state": a.state,
                    "reason": a.reason,
                    "started_at": a.started_at.isoformat(),
                    "ended_at": a.ended_at.isoformat() if a.ended_at else None,
                }
                for a in st.attempts(job_id)
            ],
            "node_runs": [
                {
                    "attempt": n.attempt,
                    "rank": n.rank,
                    "state": n.state.value,
                    "pid": n.pid,
                    "exit_code": n.exit_code,
                }
                for n in st.nodes(job_id)
            ],
            "events": [
                {
                    "time": e.time.isoformat(),
                    "kind": e.kind,
                    "from": e.from_state,
                    "to": e.to_state,
                    "reason": e.reason or _describe(e.data),
                    "data": e.data,
                }
                for e in st.events(job_id)
            ],
        }

    @staticmethod
    def _summary(w: WorkloadRecord) -> dict[str, Any]:
        placement = w.placement or {}
        return {
            "id": w.id,
            "name": w.name,
            "tenant": w.tenant,
            "kind": w.kind.value,
            "state": w.state.value,
            "desired": w.desired.value,
            "priority": w.priority,
            "provider": placement.get("provider"),
            "region": placement.get("region"),
            "attempt": w.attempt,
            "restarts": w.restarts,
            "exit_code": w.exit_code,
            "reason": w.reason,
            "created_at": w.created_at.isoformat(),
            "finished_at": w.finished_at.isoformat() if w.finished_at else None,
        }

    def jobs(self, states: list[JobState] | None = None) -> list[dict[str, Any]]:
        return [self._summary(w) for w in self.store.list_workloads(states=states)]

    def queue(self) -> list[dict[str, Any]]:
        """Jobs not yet finished, each with its state and the reason it waits (if any)."""
        live = [s for s in JobState if not s.terminal]
        return self.jobs(live)

    # -- change ----------------------------------------------------------------------------
    def cancel(self, job_id: int) -> dict[str, Any]:
        """Ask for cancellation (the loop kills every node); InvalidRequest if finished."""
        w = self.store.request_cancel(job_id)
        if self.autostart:
            self.ensure_daemon()
        return self._summary(w)

    def wait(
        self, job_id: int, timeout: float | None = None, poll_s: float = 0.2
    ) -> dict[str, Any]:
        """Block until the job is terminal (or ``timeout`` seconds); returns its summary."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            w = self.store.get(job_id)
            if w.state.terminal or (deadline is not None and time.monotonic() > deadline):
                return self._summary(w)
            if self.autostart and not w.state.terminal:
                self.ensure_daemon()
            time.sleep(poll_s)

    # -- logs ------------------------------------------------------------------------------
    def log_path(self, job_id: int, node: int) -> Path:
        return Path(self._local_provider().log_path(str(job_id), node))

    def logs(self, job_id: int, node: int | None = None, follow: bool = False) -> Iterator[str]:
        """Log lines of one node (or every node, prefixed ``[node N]``); with ``follow``,
        keep yielding new lines until the job is terminal and its logs are drained."""
        w = self.store.get(job_id)
        ranks = [node] if node is not None else list(range(self._ranks(w)))
        if node is not None and node not in range(self._ranks(w)):
            from intercloud.store import InvalidRequest

            raise InvalidRequest(f"--node: job {job_id} has nodes 0..{self._ranks(w) - 1}")
        offsets = dict.fromkeys(ranks, 0)
        prefix = node is None and len(ranks) > 1
        while True:
            done = self.store.get(job_id).state.terminal
            got = False
            for r in ranks:
                path = self.log_path(job_id, r)
                if not path.exists():
                    continue
                with path.open("rb") as f:
                    f.seek(offsets[r])
                    chunk = f.read()
                # only whole lines while following, so interleaved nodes stay readable
                cut = chunk.rfind(b"\n") + 1 if follow and not done else len(chunk)
                if cut:
                    offsets[r] += cut
                    got = True
                    for line in chunk[:cut].decode(errors="replace").splitlines(keepends=True):
                        yield f"[node {r}] {line}" if prefix else line
            if not follow or (done and not got):
                return
            if not got:
                if self.autostart:
                    self.ensure_daemon()
                time.sleep(0.1)

    @staticmethod
    def _ranks(w: WorkloadRecord) -> int:
        placement = w.placement or {}
        nodes = placement.get("nodes")
        if isinstance(nodes, int) and nodes > 0:
            return nodes
        from intercloud.specs import load_spec_text

        return max(load_spec_text(w.spec_text).workload.resources.num_nodes, 1)

    # -- daemon ----------------------------------------------------------------------------
    def ensure_daemon(self) -> int:
        from intercloud.control.daemon import ensure_daemon

        return ensure_daemon(self.home, self.db_url)

    def stop_daemon(self, timeout: float = 10.0) -> bool:
        from intercloud.control.daemon import stop_daemon

        return stop_daemon(self.home, timeout)

    def daemon_status(self) -> dict[str, Any]:
        from intercloud.control.daemon import daemon_status

        return daemon_status(self.home)
