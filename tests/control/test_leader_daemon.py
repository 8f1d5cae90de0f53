"""High availability: two daemons (two homes) on one PostgreSQL database, one leads.

SIGKILL the leader under a stream of submissions: the standby takes the lease within
its time to live, recovers from the store, adopts the orphaned nodes of the dead
leader's home (same host: it can see their processes) and finishes every job. Checked
all along: at most one live node per (job, rank) in the store and at most one node run
per (job, rank) among the processes of both homes."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from control_helpers import spec

from intercloud.control.daemon import daemon_status, ensure_daemon, stop_daemon
from intercloud.control.leader import CONTROL_LOOP_LEASE
from intercloud.store import Store, open_store
from intercloud.store.testing import temporary_postgres_database
from node_processes import leftovers_killed

TTL_S = 2.0
MARKER = "INTERCLOUD_NODE_MARKER"


@pytest.fixture
def pg_url(postgres_required: None) -> Iterator[str]:
    with temporary_postgres_database() as url:
        yield url


@pytest.fixture
def homes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    monkeypatch.setenv("INTERCLOUD_LOCAL_CPUS", "64")
    monkeypatch.setenv("INTERCLOUD_LEADER_TTL", str(TTL_S))
    monkeypatch.setenv("INTERCLOUD_DAEMON_IDLE_EXIT", "30")
    monkeypatch.delenv("INTERCLOUD_CRASHPOINTS", raising=False)
    pair = (tmp_path / "a", tmp_path / "b")
    yield pair
    for h in pair:
        stop_daemon(h, timeout_s=5)
    for h in pair:
        assert leftovers_killed(h / "local") == []


def _node_runs(roots: list[Path]) -> dict[tuple[str, str], set[str]]:
    """(job, rank) -> the node directories with a live process, across ``roots``."""
    inside = [str(r) + os.sep for r in roots]
    runs: dict[tuple[str, str], set[str]] = defaultdict(set)
    for proc in psutil.process_iter(["pid"]):
        try:
            marker = proc.environ().get(MARKER, "")
            if not any(marker.startswith(i) for i in inside):
                continue
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
        except psutil.Error:
            continue
        node_dir = Path(marker)  # .../jobs/<job>/attempt-<a>/node-<r>
        runs[(node_dir.parent.parent.name, node_dir.name)].add(marker)
    return dict(runs)


class _Watch(threading.Thread):
    """Samples the store and the processes until stopped; keeps every overlap seen."""

    def __init__(self, url: str, roots: list[Path]) -> None:
        super().__init__(daemon=True)
        self.store = open_store(url)
        self.roots = roots
        self.stop = threading.Event()
        self.overlaps: list[str] = []
        self.samples = 0

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                live: dict[tuple[int, int], int] = defaultdict(int)
                for n in self.store.live_nodes():
                    live[(n.workload_id, n.rank)] += 1
                self.overlaps += [f"store: {k} live {c} times" for k, c in live.items() if c > 1]
                for key, dirs in _node_runs(self.roots).items():
                    if len(dirs) > 1:
                        self.overlaps.append(f"processes: {key} runs in {sorted(dirs)}")
                self.samples += 1
                time.sleep(0.1)
        finally:
            self.store.close()


def _leader_pid(store: Store) -> int:
    lease = store.lease(CONTROL_LOOP_LEASE)
    assert lease is not None
    return int(lease.holder.rsplit(":", 2)[1])


def test_sigkill_leader_standby_takes_over_no_loss_no_double_run(
    pg_url: str, homes: tuple[Path, Path]
) -> None:
    store = open_store(pg_url)
    try:
        acked = [store.submit("training", "warm", spec("sleep 0.5", nodes=2))]
        pids = {ensure_daemon(h, pg_url): h for h in homes}
        assert len(pids) == 2 and all(daemon_status(h)["running"] for h in homes)
        deadline = time.monotonic() + 20
        while store.lease(CONTROL_LOOP_LEASE) is None:
            assert time.monotonic() < deadline, "no daemon took the lease"
            time.sleep(0.05)
        leader = _leader_pid(store)
        assert leader in pids, f"the lease names pid {leader}, not one of {sorted(pids)}"
        standby = next(p for p in pids if p != leader)
        watch = _Watch(pg_url, [h / "local" for h in homes])
        watch.start()

        def submit(n: int) -> None:
            for i in range(n):  # acknowledged: the id came back from the store
                acked.append(store.submit("training", f"s{i}", spec("sleep 2", nodes=2)))
                time.sleep(0.15)

        submit(10)
        running = [n for n in store.live_nodes() if n.state.value == "running"]
        assert running, "the leader started nothing before it was killed"
        old = store.lease(CONTROL_LOOP_LEASE)
        assert old is not None
        os.kill(leader, signal.SIGKILL)
        killed_at = time.monotonic()
        submit(8)  # the stream goes on while nobody leads
        while True:
            lease = store.lease(CONTROL_LOOP_LEASE)
            if lease is not None and lease.holder != old.holder:
                break
            assert time.monotonic() - killed_at < TTL_S * 4 + 5, "no takeover"
            time.sleep(0.05)
        assert _leader_pid(store) == standby
        assert lease.epoch > old.epoch

        deadline = time.monotonic() + 45
        while not all(store.get(j).state.terminal for j in acked):
            assert time.monotonic() < deadline, [store.get(j).state.value for j in acked]
            time.sleep(0.2)
        watch.stop.set()
        watch.join(10)
        states = {j: store.get(j) for j in acked}
        assert len(acked) == 19 and all(w.state.value == "SUCCEEDED" for w in states.values())
        # the dead leader's running nodes were adopted (same host), not run again
        assert all(w.attempt == 1 for w in states.values()), {
            j: w.attempt for j, w in states.items()
        }
        assert watch.samples > 10 and watch.overlaps == []
        assert daemon_status(pids[standby])["pid"] == standby
    finally:
        store.close()


def test_a_daemon_restarted_on_its_home_leads_at_once(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The home's lock proves its previous daemon dead: its lease is let go at once,
    not after its time to live (30 s here)."""
    monkeypatch.setenv("INTERCLOUD_LOCAL_CPUS", "8")
    monkeypatch.setenv("INTERCLOUD_LEADER_TTL", "30")
    monkeypatch.delenv("INTERCLOUD_CRASHPOINTS", raising=False)
    home = tmp_path / "home"
    store = open_store(db_url)
    try:
        first = ensure_daemon(home, db_url)
        assert _leader_pid(store) == first  # ready means recovered: it leads already
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while daemon_status(home)["running"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        second = ensure_daemon(home, db_url)
        lease = store.lease(CONTROL_LOOP_LEASE)
        assert lease is not None and _leader_pid(store) == second and lease.epoch == 2
        job = store.submit("training", "after", spec("true"))
        deadline = time.monotonic() + 20
        while not store.get(job).state.terminal:
            assert time.monotonic() < deadline, store.get(job).state.value
            time.sleep(0.05)
        assert store.get(job).state.value == "SUCCEEDED"
    finally:
        stop_daemon(home, timeout_s=5)
        store.close()
    assert leftovers_killed(home / "local") == []


def test_leader_killed_between_spawn_and_record_is_adopted_by_the_other_home(
    pg_url: str, homes: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Home a's daemon dies right after it spawned a node, before recording it (the
    ``starting`` crashpoint): b's daemon must find that run under a's root and adopt it,
    not start a second one under its own."""
    a, b = homes
    store = open_store(pg_url)
    try:
        # "starting" is hit after the claim, then after the spawn: with this seed the
        # first hit passes (0.57 >= 0.5) and the second kills (0.43 < 0.5)
        monkeypatch.setenv("INTERCLOUD_CRASHPOINTS", "starting:0.5")
        monkeypatch.setenv("INTERCLOUD_CRASH_SEED", "10")
        monkeypatch.setenv("INTERCLOUD_CRASH_LOG", str(a.parent / "crashes.log"))
        first = ensure_daemon(a, pg_url)
        for name in ("INTERCLOUD_CRASHPOINTS", "INTERCLOUD_CRASH_SEED", "INTERCLOUD_CRASH_LOG"):
            monkeypatch.delenv(name)
        assert _leader_pid(store) == first
        second = ensure_daemon(b, pg_url)
        watch = _Watch(pg_url, [h / "local" for h in homes])
        watch.start()
        job = store.submit("training", "window", spec("sleep 3", nodes=2))
        deadline = time.monotonic() + 20
        while _leader_pid(store) != second:
            assert time.monotonic() < deadline, "no takeover"
            time.sleep(0.05)
        assert not daemon_status(a)["running"]  # it died at the crashpoint
        assert (a.parent / "crashes.log").read_text() == "starting\n"
        while not store.get(job).state.terminal:
            assert time.monotonic() < deadline + 20, store.get(job).state.value
            time.sleep(0.1)
        watch.stop.set()
        watch.join(10)
        w = store.get(job)
        assert w.state.value == "SUCCEEDED" and w.attempt == 1
        dirs = {str((n.extra or {}).get("node_dir", "")) for n in store.nodes(job)}
        assert any(d.startswith(str(a)) for d in dirs), dirs  # rank 0: a's run, adopted
        assert watch.samples > 10 and watch.overlaps == []
    finally:
        store.close()
