"""The loop's job walk (``control.jobs.walk``) looks only at the jobs whose record or
nodes changed, plus every job not quiet. It must decide what a walk over everything
decides: the same random run of submissions, node exits, failures, cancels, spot
reclaims, lost instances, nodes ended by another writer, outages and dropped node
tracking gives the same history with the delta walk as with a full walk every step; in
every step a skipped job is one a full walk would leave alone, and every running node
nobody tracks is checked for adoption. Also the store's change logs the walk reads
(``RowImage.read_since``) and a node left unadopted."""

from __future__ import annotations

import random
import zlib
from pathlib import Path
from typing import Any

import pytest
from control_helpers import spec
from fake_cloud import FakeCloud, FakeProvider
from test_live_loop import config, loop

from intercloud.control.jobs import running
from intercloud.control.jobs.context import TrackedNodes
from intercloud.control.jobs.walk import JobWalk, WalkStep
from intercloud.control.reconciler import NON_TERMINAL, Reconciler
from intercloud.control.states import JobState
from intercloud.store import Desired, NodeState, Store, open_store
from intercloud.store.records import AssignmentState
from intercloud.store.testing import FakeClock

A = AssignmentState
S = JobState


class ShadowWalk(JobWalk):
    """The delta walk, checked against a fresh read of everything at each step: a job
    it skips is RUNNING, not cancelled and quiet; every running node nobody tracks is
    handed to the adoption check."""

    def __init__(self, store: Store, full_every: int) -> None:
        super().__init__(full_every)
        self.store = store
        self.ctx: Any = None  # the loop's ``JobContext`` (set by ``_world``)
        self.skipped = 0
        self._step: WalkStep | None = None
        self._tracked: TrackedNodes | None = None

    def begin(self, store: Store, tracked: TrackedNodes) -> WalkStep:
        self._step, self._tracked = super().begin(store, tracked), tracked
        # the walk's rows are the store's rows (the image plus its log)
        assert [w.id for w in self._step.jobs] == [
            w.id for w in store.list_workloads(states=NON_TERMINAL)
        ]
        return self._step

    def to_adopt(self, step: WalkStep) -> Any:
        out = super().to_adopt(step)
        assert self._tracked is not None
        checked = {(n.workload_id, n.attempt, n.rank) for n in out}
        for n in self.store.live_nodes():
            key = (n.workload_id, n.attempt, n.rank)
            if n.state is NodeState.RUNNING and key not in self._tracked:
                assert key in checked, f"running node {key} not tracked and not checked"
        return out

    def looks_at(self, job_id: int) -> bool:
        look = super().looks_at(job_id)
        if not look:
            self.skipped += 1
            w = self.store.get(job_id)
            assert w.state is S.RUNNING and w.desired is not Desired.CANCEL, w
            mine = [n for n in self.store.live_nodes() if n.workload_id == job_id]
            step = self._step
            assert step is not None
            assert list(step.live(job_id)) == mine  # (the walk's nodes are the store's)
            assert running.quiet(self.ctx, w, mine), f"job {job_id} skipped but not quiet"
        return look


def _roll(seed: int, *key: object) -> float:
    """A number in [0, 1) fixed by ``key``: both worlds draw the same for the same node,
    whatever order or ids their rows have."""
    return zlib.crc32(repr((seed, *key)).encode()) / 2**32


def _agents(store: Store, seed: int, rnd: int) -> None:
    """Node agents: start what is assigned; a started node ends now and then (mostly
    exit 0, sometimes 1), unless it was told to stop."""
    for r in sorted(store.instances(bound=True), key=lambda r: r.id):
        if r.state not in ("running", "draining") or r.workload_id is None:
            continue
        if r.assignment_state is A.ASSIGNED:
            store.set_assignment_state(r.id, A.ASSIGNED, A.STARTED)
        elif r.assignment_state is A.STARTED:
            who = (r.workload_id, (r.assignment or {}).get("key"), rnd)
            if (r.assignment or {}).get("kill"):
                store.set_assignment_state(r.id, A.STARTED, A.KILLED)
            elif _roll(seed, "end", *who) < 0.12:
                code = 1 if _roll(seed, "code", *who) < 0.25 else 0
                store.set_assignment_state(r.id, A.STARTED, A.EXITED, exit_code=code)


def _world(
    tmp_path: Path, name: str, url: str | None, full_every: int
) -> tuple[Store, FakeClock, FakeCloud, FakeProvider, Reconciler, ShadowWalk]:
    home = tmp_path / name
    home.mkdir()
    clock = FakeClock()
    store = open_store(url or f"sqlite:///{home / 'state.db'}", clock=clock)
    cfg = config(home, "providers: {local: {}}\npools: {idle_s: 5, max_instances: 12}\n")
    cloud = FakeCloud()
    provider = FakeProvider(cloud)
    rec, _ = loop(store, clock, cfg, provider, home)
    walk = ShadowWalk(store, full_every)
    rec.walk = walk
    walk.ctx = rec.ctx
    return store, clock, cloud, provider, rec, walk


def _run(
    tmp_path: Path, name: str, full_every: int, seed: int, rounds: int, url: str | None = None
) -> tuple[list[tuple[Any, ...]], ShadowWalk]:
    """A random run (by ``seed``) of ``rounds`` loop steps; the history it wrote."""
    store, clock, cloud, provider, rec, walk = _world(tmp_path, name, url, full_every)
    rng = random.Random(seed)
    down_until = -1
    try:
        for rnd in range(rounds):
            if rng.random() < 0.5:
                nodes = rng.choice((1, 1, 2, 3))
                text = spec(f"python train.py --run {rnd}", nodes=nodes, instance_type="gpu8")
                if rng.random() < 0.3:
                    text += "restart: {max_restarts: 1}\n"
                store.submit("training", f"j{rnd}", text)
            active = sorted(w.id for w in store.list_workloads(states=NON_TERMINAL))
            if active and rng.random() < 0.08:
                store.request_cancel(rng.choice(active))
            vms = sorted(i for i, vm in cloud.vms.items() if vm.view.state.value == "running")
            if vms and rng.random() < 0.1:
                provider.reclaim(rng.choice(vms))
            elif vms and rng.random() < 0.05:
                provider.lose(rng.choice(vms))
            live = [(n.workload_id, n.attempt, n.rank) for n in store.live_nodes()]
            if live and rng.random() < 0.1:
                # another writer ends a node (its tracking stays): only its row says so
                store.record_node_ended(*rng.choice(live), NodeState.LOST, reason="test")
            tracked = sorted(rec.ctx.tracked)
            if tracked and rng.random() < 0.15:
                rec.ctx.tracked.discard(rng.choice(tracked))  # a provider stopped polling it
            if rng.random() < 0.06:
                down_until = rnd + 3  # an outage: nothing adopted, launched or observed
            cloud.down = rnd < down_until
            rec.step()
            _agents(store, seed, rnd)
            clock.tick(1)
        history = [
            (e.workload_id, e.kind, e.from_state, e.to_state, e.reason, e.time)
            for e in store.events()
        ]
        history += [(r.id, r.state, r.workload_id, r.assignment_state) for r in store.instances()]
        return history, walk
    finally:
        rec.close()
        store.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_delta_walk_writes_what_a_full_walk_writes(tmp_path: Path, seed: int) -> None:
    full, full_walk = _run(tmp_path, "full", 1, seed, 60)
    delta, delta_walk = _run(tmp_path, "delta", 25, seed, 60)
    assert full_walk.delta_walks == 0
    # the delta walk ran, skipped jobs, and looked at everything every 25 steps
    assert delta_walk.delta_walks > 50 and delta_walk.full_walks >= 2
    assert delta_walk.skipped > 0
    kinds = {h[1] for h in full if len(h) == 6}
    assert {"transition"} <= kinds
    terminal = {h[3] for h in full if len(h) == 6 and h[1] == "transition"}
    assert {"SUCCEEDED", "FAILED", "CANCELLED"} & terminal, terminal  # (the run did things)
    assert delta == full


def test_the_walk_checks_itself_on_each_backend(db_url: str, tmp_path: Path) -> None:
    url = None if db_url.startswith("sqlite") else db_url
    _, walk = _run(tmp_path, "w", 1000, 7, 40, url)
    assert walk.full_walks == 1 and walk.delta_walks == 39 and walk.skipped > 0


def test_a_step_cut_short_makes_the_next_one_look_at_everything(tmp_path: Path) -> None:
    store, clock, _, _, rec, walk = _world(tmp_path, "cut", None, 1000)
    try:
        store.submit("training", "j", spec("python a.py", instance_type="gpu8"))
        for _ in range(3):
            rec.step()
            clock.tick(1)
        assert walk.full_walks == 1 and walk.delta_walks == 2
        walk.begin(store, rec.ctx.tracked)  # ... and no finish: an error cut the step
        assert walk.delta_walks == 3
        rec.step()
        assert walk.full_walks == 2
        rec.step()
        assert walk.delta_walks == 4
        rec.recover()  # a recovery forgets everything kept
        rec.step()
        assert walk.full_walks == 3
    finally:
        rec.close()
        store.close()


def test_row_image_change_log(tmp_path: Path) -> None:
    clock = FakeClock()
    store = open_store(f"sqlite:///{tmp_path / 's.db'}", clock=clock)
    try:
        a = store.submit("training", "a", spec("true"))
        rows, changes, cur = store.active_workloads_since(None)
        assert [w.id for w in rows] == [a] and changes is None  # no cursor: unknown
        rows, changes, cur2 = store.active_workloads_since(cur)
        assert changes == [] and cur2 == cur  # nothing changed
        b = store.submit("training", "b", spec("true"))
        store.request_cancel(a)
        rows, changes, cur3 = store.active_workloads_since(cur2)
        assert changes is not None
        assert sorted({(w.id, here) for w, here in changes}) == [(a, True), (b, True)]
        assert {w.id for w in rows} == {a, b}
        # a job that leaves the active states: its last change says so
        w = store.get(b)
        assert store.transition(b, S.PENDING, S.CANCELLED, "test", expected_version=w.version)
        rows, changes, cur4 = store.active_workloads_since(cur3)
        assert [w.id for w in rows] == [a]
        assert changes is not None and [(w.id, here) for w, here in changes][-1] == (b, False)
        # the log started afresh (it grew too long): an earlier cursor reads "unknown"
        store._workload_image._restart_log()
        _, changes, cur5 = store.active_workloads_since(cur4)
        assert changes is None
        _, changes, _ = store.active_workloads_since(cur5)
        assert changes == []
        # the nodes' log is a log of its own
        nodes, node_changes, _ = store.live_nodes_since(None)
        assert nodes == [] and node_changes is None
    finally:
        store.close()


def test_tracked_nodes_remember_what_was_dropped() -> None:
    t = TrackedNodes()
    t.add((1, 1, 0))
    t.add((1, 1, 1))
    t.discard((1, 1, 0))
    t.discard((9, 9, 9))  # never tracked: not dropped
    assert (1, 1, 1) in t and (1, 1, 0) not in t and len(t) == 1
    assert t.take_dropped() == {(1, 1, 0)} and t.take_dropped() == set()
    t.clear()
    assert len(t) == 0 and t.take_dropped() == {(1, 1, 1)}


class _Rows:
    """A stand-in for the store's two change logs: ``jobs`` and ``nodes`` as given, and
    the changes the test sets (cursors count reads)."""

    def __init__(self, jobs: list[Any], nodes: list[Any]) -> None:
        self.jobs, self.nodes = jobs, nodes
        self.job_changes: list[Any] = []
        self.node_changes: list[Any] = []

    def active_workloads_since(self, cursor: Any) -> tuple[Any, Any, Any]:
        changes, self.job_changes = self.job_changes, []
        return self.jobs, None if cursor is None else changes, (0, 0)

    def live_nodes_since(self, cursor: Any) -> tuple[Any, Any, Any]:
        changes, self.node_changes = self.node_changes, []
        return self.nodes, None if cursor is None else changes, (0, 0)


def test_a_node_left_unadopted_is_checked_again_every_step() -> None:
    """A running node nobody could adopt (its provider not enabled, say) is handed to
    the adoption check at each step until it is tracked, as a full walk would."""
    from types import SimpleNamespace as NS

    jobs = [NS(id=1), NS(id=2)]
    nodes = [NS(workload_id=1, attempt=1, rank=0), NS(workload_id=2, attempt=1, rank=0)]
    rows: Any = _Rows(jobs, nodes)
    walk, tracked = JobWalk(), TrackedNodes()
    step = walk.begin(rows, tracked)
    assert step.full and walk.to_adopt(step) == nodes
    walk.judge(1, True)
    walk.judge(2, True)
    walk.unadopted({2})  # job 2's node: the adoption check could not adopt it
    walk.finish()
    for _ in range(3):
        step = walk.begin(rows, tracked)
        assert not step.full and step.dirty == {2}
        assert walk.to_adopt(step) == [nodes[1]]
        assert walk.looks_at(2) and not walk.looks_at(1)  # (1: quiet, unchanged)
        walk.judge(2, True)
        walk.unadopted({2})
        walk.finish()
    walk.unadopted(set())  # adopted at last
    walk.finish()
    step = walk.begin(rows, tracked)
    assert step.dirty == set() and walk.to_adopt(step) == []
    # a changed node makes its job looked at; a job that left is forgotten
    rows.node_changes = [(nodes[0], False)]
    rows.job_changes = [(jobs[1], False)]
    walk.finish()
    step = walk.begin(rows, tracked)
    assert step.dirty == {1, 2} and step.departed == {2} and walk.looks_at(1)
