"""Store behaviour on both backends: submissions, guarded transitions, history, nodes."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest

from intercloud.control.states import IllegalTransition, JobState
from intercloud.store import (
    Desired,
    InvalidRequest,
    NodeAlreadyStarted,
    NodeState,
    Store,
    UnknownWorkload,
    WorkloadKind,
    open_store,
)
from intercloud.store.testing import FakeClock

S = JobState
SPEC = "name: llama\nresources:\n  accelerators: H100:8\n"


def _submit(store: Store, name: str = "llama", max_restarts: int = 0) -> int:
    return store.submit("training", name, SPEC, max_restarts=max_restarts)


def _to_running(store: Store, job: int) -> None:
    assert store.transition(job, S.PENDING, S.PLACING, "scheduling")
    assert store.transition(job, S.PLACING, S.PROVISIONING, "placed", attempt=1)
    assert store.transition(job, S.PROVISIONING, S.RUNNING, "all nodes up")


# -- tenants and submissions ----------------------------------------------------------


def test_default_tenant_exists(store: Store) -> None:
    assert [t.name for t in store.tenants()] == ["default"]
    team = store.ensure_tenant("team-a")
    assert store.ensure_tenant("team-a") == team
    assert [t.name for t in store.tenants()] == ["default", "team-a"]


def test_submit_stores_everything(store: Store, clock: FakeClock) -> None:
    job = store.submit("batch", "etl", "x: 1", "skypilot", priority=5, max_restarts=2)
    rec = store.get(job)
    assert rec.id == job and rec.tenant == "default" and rec.name == "etl"
    assert rec.kind is WorkloadKind.BATCH and rec.spec_text == "x: 1"
    assert rec.spec_format == "skypilot" and rec.priority == 5 and rec.max_restarts == 2
    assert rec.state is S.PENDING and rec.desired is Desired.RUN
    assert (rec.attempt, rec.restarts, rec.version) == (0, 0, 1)
    assert rec.created_at == rec.updated_at == clock.now and rec.created_at.tzinfo is UTC
    assert rec.finished_at is None and rec.placement is None
    [ev] = store.events(job)
    assert (ev.kind, ev.from_state, ev.to_state, ev.reason) == (
        "transition",
        None,
        "PENDING",
        "submitted",
    )


def test_ids_grow(store: Store) -> None:
    assert [_submit(store, f"j{i}") for i in range(3)] == [1, 2, 3]


def test_submit_rejects_bad_input(store: Store) -> None:
    with pytest.raises(InvalidRequest, match="unknown tenant 'nobody'"):
        store.submit("training", "x", SPEC, tenant="nobody")
    with pytest.raises(InvalidRequest):
        store.submit("cooking", "x", SPEC)
    with pytest.raises(InvalidRequest):
        store.submit("training", "x", SPEC, spec_format="slurm")
    with pytest.raises(InvalidRequest):
        store.submit("training", "x", SPEC, max_restarts=-1)
    assert store.list_workloads() == []


def test_submit_is_durable_for_another_process(store: Store, db_url: str) -> None:
    job = _submit(store)
    code = (
        "import sys; from intercloud.store import open_store;"
        "s = open_store(sys.argv[1]); r = s.get(int(sys.argv[2]));"
        "print(r.name, r.state.value)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, db_url, str(job)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.split() == ["llama", "PENDING"]


def test_submit_from_another_engine_is_visible_immediately(store: Store, db_url: str) -> None:
    with open_store(db_url) as other:
        job = _submit(other)
    assert store.get(job).name == "llama"


def test_times_must_be_aware_and_come_back_utc(store: Store) -> None:
    with pytest.raises(ValueError, match="naive"):
        store.submit("training", "x", SPEC, now=datetime(2026, 1, 1))
    cet = timezone(timedelta(hours=1))
    job = store.submit("training", "x", SPEC, now=datetime(2026, 1, 1, 13, 0, tzinfo=cet))
    assert store.get(job).created_at == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert store.get(job).created_at.tzinfo is UTC


def test_get_unknown(store: Store) -> None:
    with pytest.raises(UnknownWorkload) as e:
        store.get(99)
    assert str(e.value) == "no workload 99"
    assert isinstance(e.value, KeyError)


def test_list_filters(store: Store) -> None:
    store.ensure_tenant("team-a")
    a = _submit(store, "a")
    b = store.submit("service", "b", SPEC, tenant="team-a")
    c = _submit(store, "c")
    store.transition(c, S.PENDING, S.PLACING, "scheduling")
    store.request_cancel(a)
    assert [w.id for w in store.list_workloads()] == [a, b, c]
    assert [w.id for w in store.list_workloads(states=[S.PENDING])] == [a, b]
    assert [w.id for w in store.list_workloads(states=["PLACING"])] == [c]
    assert [w.id for w in store.list_workloads(tenant="team-a")] == [b]
    assert [w.id for w in store.list_workloads(desired="cancel")] == [a]
    assert store.list_workloads(states=[]) == []
    with pytest.raises(UnknownWorkload):
        store.get(b, tenant="default")


# -- transitions ----------------------------------------------------------------------


def test_transition_updates_and_bumps_version(store: Store, clock: FakeClock) -> None:
    job = _submit(store)
    clock.tick(5)
    rec = store.transition(job, S.PENDING, S.PLACING, "scheduling", expected_version=1)
    assert rec is not None and rec.state is S.PLACING and rec.version == 2
    assert rec.reason == "scheduling" and rec.updated_at == clock.now
    placement = {"provider": "aws", "region": "us-east-1", "nodes": 2, "hourly_usd": 98.3}
    rec = store.transition(job, S.PLACING, S.PROVISIONING, "placed", placement=placement, attempt=1)
    assert rec is not None and rec.placement == placement and rec.attempt == 1
    assert rec.version == 3


def test_stale_guards_change_nothing(store: Store) -> None:
    job = _submit(store)
    assert store.transition(job, S.PENDING, S.PLACING, expected_version=7) is None
    assert store.transition(job, S.PLACING, S.PENDING, "hold") is None  # not in PLACING
    rec = store.get(job)
    assert rec.state is S.PENDING and rec.version == 1
    assert len(store.events(job)) == 1


def test_illegal_transition_raises_and_writes_nothing(store: Store) -> None:
    job = _submit(store)
    with pytest.raises(IllegalTransition):
        store.transition(job, S.PENDING, S.RUNNING)
    with pytest.raises(IllegalTransition):
        store.transition(job, S.SUCCEEDED, S.PENDING)
    assert store.get(job).version == 1


def test_transition_unknown_workload_and_field(store: Store) -> None:
    with pytest.raises(UnknownWorkload):
        store.transition(42, S.PENDING, S.PLACING)
    job = _submit(store)
    with pytest.raises(TypeError, match="state"):
        store.transition(job, S.PENDING, S.PLACING, state="RUNNING")


def test_terminal_sets_finished_at_and_exit_code(store: Store, clock: FakeClock) -> None:
    job = _submit(store)
    _to_running(store, job)
    clock.tick(3600)
    rec = store.transition(job, S.RUNNING, S.SUCCEEDED, "exit 0", exit_code=0)
    assert rec is not None and rec.finished_at == clock.now and rec.exit_code == 0


def test_event_history_tells_the_story(store: Store, clock: FakeClock) -> None:
    job = _submit(store, max_restarts=1)
    store.transition(job, S.PENDING, S.PLACING, "scheduling")
    store.transition(job, S.PLACING, S.PENDING, "no capacity for 2x H100:8")
    store.transition(job, S.PENDING, S.PLACING, "scheduling")
    store.transition(job, S.PLACING, S.PROVISIONING, "placed on aws", attempt=1)
    store.transition(job, S.PROVISIONING, S.RUNNING, "all nodes up")
    store.transition(job, S.RUNNING, S.RECOVERING, "node 1 lost")
    store.transition(job, S.RECOVERING, S.PENDING, "restart 1 of 1", restarts=1)
    store.add_event(job, "log", "checkpoint at step 1200", {"step": 1200})
    story = [(e.kind, e.from_state, e.to_state, e.reason) for e in store.events(job)]
    assert story == [
        ("transition", None, "PENDING", "submitted"),
        ("transition", "PENDING", "PLACING", "scheduling"),
        ("transition", "PLACING", "PENDING", "no capacity for 2x H100:8"),
        ("transition", "PENDING", "PLACING", "scheduling"),
        ("transition", "PLACING", "PROVISIONING", "placed on aws"),
        ("transition", "PROVISIONING", "RUNNING", "all nodes up"),
        ("transition", "RUNNING", "RECOVERING", "node 1 lost"),
        ("transition", "RECOVERING", "PENDING", "restart 1 of 1"),
        ("log", None, None, "checkpoint at step 1200"),
    ]
    events = store.events(job)
    assert events[4].data == {"attempt": 1} and events[-1].data == {"step": 1200}
    assert [e.id for e in store.events(job, after_id=events[6].id)] == [
        events[7].id,
        events[8].id,
    ]
    assert len(store.events(job, limit=2)) == 2
    rec = store.get(job)
    assert rec.restarts == 1 and rec.reason == "restart 1 of 1" and rec.version == 8


def test_set_fields_is_guarded(store: Store) -> None:
    job = _submit(store)
    rec = store.set_fields(job, 1, reason="waiting for quota", priority=9)
    assert rec is not None and rec.priority == 9 and rec.reason == "waiting for quota"
    assert rec.version == 2 and rec.state is S.PENDING
    assert store.set_fields(job, 1, priority=1) is None
    assert store.get(job).priority == 9
    with pytest.raises(TypeError):
        store.set_fields(job, 2, version=10)
    with pytest.raises(UnknownWorkload):
        store.set_fields(77, 1, priority=1)
    assert store.events(job)[-1].kind == "updated"


# -- cancel ---------------------------------------------------------------------------


def test_cancel_records_desire_once(store: Store) -> None:
    job = _submit(store)
    rec = store.request_cancel(job)
    assert rec.desired is Desired.CANCEL and rec.state is S.PENDING and rec.version == 2
    again = store.request_cancel(job)
    assert again == rec
    assert [e.kind for e in store.events(job)] == ["transition", "cancel_requested"]
    # a loop holding the old version loses its race against the cancel
    assert store.transition(job, S.PENDING, S.PLACING, expected_version=1) is None


def test_cancel_finished_job_is_refused(store: Store) -> None:
    job = _submit(store)
    _to_running(store, job)
    store.transition(job, S.RUNNING, S.SUCCEEDED, "exit 0", exit_code=0)
    with pytest.raises(InvalidRequest) as e:
        store.request_cancel(job)
    assert str(e.value) == f"job {job} already SUCCEEDED"
    with pytest.raises(UnknownWorkload):
        store.request_cancel(999)
    other = store.ensure_tenant("team-b")
    assert other.name == "team-b"
    with pytest.raises(UnknownWorkload):
        store.request_cancel(job, tenant="team-b")


# -- attempts and nodes ---------------------------------------------------------------


def test_attempts_are_idempotent(store: Store, clock: FakeClock) -> None:
    job = _submit(store)
    a1 = store.begin_attempt(job, 1, {"provider": "local", "hosts": ["h1"]})
    assert a1.state == "active" and a1.started_at == clock.now and a1.ended_at is None
    clock.tick()
    assert store.begin_attempt(job, 1, {"provider": "other"}) == a1
    ended = store.end_attempt(job, 1, "lost", "host h1 vanished")
    assert ended.state == "lost" and ended.ended_at == clock.now
    clock.tick()
    assert store.end_attempt(job, 1, "failed") == ended  # first end wins
    store.begin_attempt(job, 2)
    assert [a.attempt for a in store.attempts(job)] == [1, 2]
    with pytest.raises(InvalidRequest):
        store.end_attempt(job, 9, "failed")
    with pytest.raises(UnknownWorkload):
        store.begin_attempt(404, 1)


def test_node_lifecycle(store: Store, clock: FakeClock) -> None:
    job = _submit(store)
    n = store.record_node_starting(job, 1, 0, "local")
    assert n.state is NodeState.STARTING and n.host is None
    assert [x.rank for x in store.live_nodes()] == [0]
    clock.tick()
    started = store.record_node_started(job, 1, 0, "h1", 4242, 987654321012, {"gpu": [0, 1]})
    assert started is not None and started.state is NodeState.RUNNING
    assert (started.host, started.pid, started.start_time) == ("h1", 4242, 987654321012)
    assert started.extra == {"gpu": [0, 1]} and started.started_at == clock.now
    assert store.record_node_started(job, 1, 0, "h2", 1, 1) is None  # not starting any more
    clock.tick()
    ended = store.record_node_ended(job, 1, 0, "exited", exit_code=3)
    assert ended is not None and ended.state is NodeState.EXITED and ended.exit_code == 3
    assert ended.ended_at == clock.now
    assert store.record_node_ended(job, 1, 0, NodeState.LOST) is None  # already ended
    assert store.live_nodes() == []
    with pytest.raises(ValueError):
        store.record_node_ended(job, 1, 0, "running")
    kinds = [e.kind for e in store.events(job)]
    assert kinds == ["transition", "node_starting", "node_started", "node_exited"]


def test_a_node_cannot_start_twice(store: Store) -> None:
    job = _submit(store)
    store.record_node_starting(job, 1, 0, "local")
    with pytest.raises(NodeAlreadyStarted) as e:
        store.record_node_starting(job, 1, 0, "local")
    assert "\n" not in str(e.value) and "node 0" in str(e.value)
    store.record_node_ended(job, 1, 0, "killed")
    with pytest.raises(NodeAlreadyStarted):  # not even after it ended: next attempt instead
        store.record_node_starting(job, 1, 0, "local")
    store.record_node_starting(job, 1, 1, "local")  # other rank: fine
    store.record_node_starting(job, 2, 0, "local")  # next attempt: fine
    assert [(n.attempt, n.rank) for n in store.nodes(job)] == [(1, 0), (1, 1), (2, 0)]
    with pytest.raises(UnknownWorkload):  # no such job: its key refers to nothing
        store.record_node_starting(404, 1, 0, "local")
    assert [n.workload_id for n in store.nodes(404)] == []
    assert [n.rank for n in store.nodes(job, attempt=1)] == [0, 1]
    with pytest.raises(UnknownWorkload):
        store.record_node_starting(404, 1, 0, "local")


def test_live_nodes_span_workloads(store: Store) -> None:
    a, b = _submit(store, "a"), _submit(store, "b")
    store.record_node_starting(b, 1, 0, "local")
    store.record_node_starting(a, 1, 1, "local")
    store.record_node_starting(a, 1, 0, "local")
    store.record_node_started(a, 1, 0, "h", 1, 2)
    store.record_node_ended(a, 1, 1, "lost")
    assert [(n.workload_id, n.rank, n.state) for n in store.live_nodes()] == [
        (a, 0, NodeState.RUNNING),
        (b, 0, NodeState.STARTING),
    ]


# -- settings -------------------------------------------------------------------------


def test_settings_round_trip(store: Store) -> None:
    assert store.get_setting("scheduler.policy") is None
    assert store.get_setting("scheduler.policy", "fifo") == "fifo"
    store.set_setting("scheduler.policy", "fair_share")
    store.set_setting("scheduler.policy", {"name": "fair_share", "weights": [1, 2]})
    assert store.get_setting("scheduler.policy") == {"name": "fair_share", "weights": [1, 2]}
    store.set_setting("n", 3)
    assert store.get_setting("n") == 3


_KILLED_AFTER_SUBMIT = """
import os, signal, sys
from intercloud.store import open_store
s = open_store(sys.argv[1])
print(s.submit("batch", "acked", "x: 1"), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_acknowledged_submit_survives_sigkill(store: Store, db_url: str) -> None:
    """The process dies right after submit returns: what it acknowledged is there."""
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_AFTER_SUBMIT, db_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -9
    job = int(proc.stdout)
    assert store.get(job).name == "acked"
    assert [e.reason for e in store.events(job)] == ["submitted"]
