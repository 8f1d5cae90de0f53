"""Racing writers: exactly one wins every guarded change, on both backends."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

from intercloud.control.states import JobState
from intercloud.store import InvalidRequest, NodeAlreadyStarted, Store, open_store

S = JobState
T = TypeVar("T")
RACERS = 8


def _race(fn: Callable[[int], T], n: int = RACERS) -> list[T]:
    """Run fn(0..n-1) in n threads released at the same instant; return their results."""
    barrier = threading.Barrier(n)
    results: list[T] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            r = fn(i)
        except BaseException as exc:  # collected and re-raised in the main thread
            with lock:
                errors.append(exc)
            return
        with lock:
            results.append(r)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return results


def test_threads_racing_one_transition(store: Store) -> None:
    for _ in range(5):
        job = store.submit("training", "race", "x: 1")
        results = _race(lambda i, job=job: store.transition(job, S.PENDING, S.PLACING, f"r{i}"))
        winners = [r for r in results if r is not None]
        assert len(results) == RACERS and len(winners) == 1
        rec = store.get(job)
        assert rec.state is S.PLACING and rec.version == 2
        assert [e.to_state for e in store.events(job)] == ["PENDING", "PLACING"]


def test_threads_racing_with_versions(store: Store) -> None:
    """Versioned compare-and-set: each racer read version 1; only one may write."""
    job = store.submit("training", "race", "x: 1")
    results = _race(lambda i: store.set_fields(job, 1, priority=i))
    assert sum(r is not None for r in results) == 1
    assert store.get(job).version == 2


def test_threads_racing_to_start_a_node(store: Store) -> None:
    job = store.submit("training", "race", "x: 1")

    def claim(_i: int) -> bool:
        try:
            store.record_node_starting(job, 1, 0, "local")
            return True
        except NodeAlreadyStarted:
            return False

    assert sorted(_race(claim)) == [False] * (RACERS - 1) + [True]
    assert len(store.nodes(job)) == 1


def test_cancel_and_finish_race(store: Store) -> None:
    """Cancel racing the job's success: either order is fine, never both half-applied."""
    for _ in range(5):
        job = store.submit("training", "race", "x: 1")
        store.transition(job, S.PENDING, S.PLACING)
        store.transition(job, S.PLACING, S.PROVISIONING)
        store.transition(job, S.PROVISIONING, S.RUNNING)

        def act(i: int, job: int = job) -> str:
            if i == 0:
                return "done" if store.transition(job, S.RUNNING, S.SUCCEEDED) else "lost"
            try:
                store.request_cancel(job)
                return "cancel"
            except InvalidRequest:  # it finished first
                return "already finished"

        outcome = _race(act, 2)
        rec = store.get(job)
        assert "done" in outcome and rec.state is S.SUCCEEDED
        assert set(outcome) <= {"done", "cancel", "already finished"}


_WORKER = """
import sys
from intercloud.store import NodeAlreadyStarted, open_store
url, job = sys.argv[1], int(sys.argv[2])
s = open_store(url)
print("ready", flush=True)
sys.stdin.readline()
won = s.transition(job, "PENDING", "PLACING", "proc") is not None
try:
    s.record_node_starting(job, 1, 0, "local")
    node = True
except NodeAlreadyStarted:
    node = False
print(int(won), int(node), flush=True)
"""


def test_processes_racing(store: Store, db_url: str) -> None:
    job = store.submit("training", "race", "x: 1")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, db_url, str(job)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for p in procs:  # every worker has opened the store...
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for p in procs:  # ...then all are let go together
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = [p.communicate(timeout=60)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs)
    won = [tuple(map(int, o.split())) for o in outs]
    assert sum(w for w, _ in won) == 1 and sum(n for _, n in won) == 1
    with open_store(db_url) as s:
        assert s.get(job).state is S.PLACING
        assert len(s.nodes(job)) == 1


def test_concurrent_first_opens_migrate_once(empty_db_url: str) -> None:
    stores = _race(lambda _i: open_store(empty_db_url), 4)
    try:
        assert [t.name for t in stores[0].tenants()] == ["default"]
        assert all(s.tenants() == stores[0].tenants() for s in stores)
    finally:
        for s in stores:
            s.close()
