"""A guarded write and its event: one statement on PostgreSQL (a data-modifying CTE),
sent without BEGIN and COMMIT when it is the whole transaction, and two statements in
one transaction on SQLite; on both, the event is written exactly when the guard
matched. Reads on PostgreSQL at READ COMMITTED go without a transaction too. A second
writing statement in a one-statement write is refused before it is sent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from intercloud.control.states import JobState
from intercloud.model import PricingKind
from intercloud.providers.contract import InstanceState as I
from intercloud.store import NodeState, Store
from intercloud.store.tables import EventModel
from intercloud.store.write_journal import SecondWrite

S = JobState
OFFER = ("aws", "us-east-1", "us-east-1a", "p5.48xlarge")


@contextmanager
def _sent(store: Store) -> Iterator[list[tuple[str, bool]]]:
    """(statement, whether the driver connection was in autocommit) for each statement
    sent inside the block, BEGIN and COMMIT included."""
    sent: list[tuple[str, bool]] = []

    def on(conn: sa.Connection, _cur: object, statement: str, *_: object) -> None:
        raw = conn.connection.dbapi_connection
        sent.append((" ".join(statement.split()), bool(getattr(raw, "autocommit", False))))

    def begin(conn: sa.Connection) -> None:
        raw = conn.connection.dbapi_connection
        if not getattr(raw, "autocommit", False) and conn.dialect.name == "postgresql":
            sent.append(("BEGIN", False))  # (psycopg sends it before the first statement)

    engine = store._db.engine
    event.listen(engine, "before_cursor_execute", on)
    event.listen(engine, "begin", begin)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", on)
        event.remove(engine, "begin", begin)


def _pg(store: Store) -> bool:
    return not store._db.is_sqlite


def test_a_transition_and_its_event_are_one_statement(store: Store) -> None:
    job = store.submit("training", "j", "kind: training\nname: j\nrun: 'true'\n")
    before = len(store.events(job))
    with _sent(store) as sent:
        rec = store.transition(job, S.PENDING, S.PLACING, "placing it")
    assert rec is not None and rec.state is S.PLACING
    writes = [s for s, _ in sent if s.split()[0] in ("UPDATE", "INSERT", "WITH")]
    if _pg(store):
        (only,) = sent  # one statement, no BEGIN, in autocommit
        assert only[0].startswith("WITH") and "UPDATE workloads" in only[0]
        assert "INSERT INTO events" in only[0] and only[1] is True
    else:
        assert [w.split()[0] for w in writes] == ["UPDATE", "INSERT"]
    (ev,) = store.events(job)[before:]
    assert (ev.kind, ev.from_state, ev.to_state, ev.reason) == (
        "transition",
        "PENDING",
        "PLACING",
        "placing it",
    )
    # a guard that fails writes neither the row nor an event
    assert store.transition(job, S.PENDING, S.PLACING, "again") is None
    assert store.transition(job, S.PLACING, S.PENDING, "stale", expected_version=1) is None
    assert len(store.events(job)) == before + 1 and store.get(job).version == rec.version


def test_an_instance_event_names_the_job_of_the_row_it_wrote(store: Store) -> None:
    job = store.submit("training", "j", "kind: training\nname: j\nrun: 'true'\n")
    (inst,) = store.request_instances("r1", 1, OFFER, PricingKind.ON_DEMAND, 98.0)
    store.transition_instance(inst.id, I.REQUESTED, I.ALLOCATED, provider_instance_id="i-1")
    store.transition_instance(inst.id, I.ALLOCATED, I.RUNNING)
    bound = store.bind_instances(job, 1, [inst.id])
    assert bound is not None and bound[0].workload_id == job
    with _sent(store) as sent:
        rec = store.transition_instance(inst.id, I.RUNNING, I.DRAINING, "draining")
    assert rec is not None and rec.workload_id == job
    if _pg(store):
        assert len(sent) == 1 and sent[0][1] is True
    last = store.instance_events(inst.id)[-1]
    assert (last.workload_id, last.to_state, last.reason) == (job, "draining", "draining")
    # a guard that fails: nothing, no event
    n = len(store.instance_events(inst.id))
    assert store.transition_instance(inst.id, I.RUNNING, I.DRAINING) is None
    assert len(store.instance_events(inst.id)) == n


def test_node_writes_carry_their_events(store: Store) -> None:
    job = store.submit("training", "j", "kind: training\nname: j\nrun: 'true'\n")
    store.record_node_starting(job, 1, 0, "local")
    assert store.record_node_started(job, 1, 0, "h", 42, 7) is not None
    assert store.record_node_ended(job, 1, 0, NodeState.EXITED, exit_code=0) is not None
    assert store.record_node_ended(job, 1, 0, NodeState.LOST) is None  # not live: nothing
    kinds = [e.kind for e in store.events(job)]
    assert kinds[-2:] == ["node_started", "node_exited"]
    assert kinds.count("node_lost") == 0


def test_reads_on_postgresql_send_no_begin(store: Store) -> None:
    job = store.submit("training", "j", "kind: training\nname: j\nrun: 'true'\n")
    with _sent(store) as sent:
        store.nodes(job)
    if _pg(store):
        assert [a for _, a in sent] == [True]
    else:
        assert [s.split()[0] for s, _ in sent] == ["BEGIN", "SELECT"]


def test_a_second_write_in_a_one_statement_write_is_refused(store: Store) -> None:
    events = sa.insert(EventModel).values(kind="test", time=sa.func.now())
    if not _pg(store):
        # SQLite ignores the flag: an ordinary transaction
        with store._db.write(one_statement=True) as conn:
            conn.execute(events)
            conn.execute(events)
        return
    with pytest.raises(SecondWrite), store._db.write(one_statement=True) as conn:
        conn.execute(sa.select(1))  # reads are fine
        conn.execute(events)
        conn.execute(sa.select(1))
        conn.execute(events)  # refused before it is sent
    assert [e.kind for e in store.events()].count("test") == 1
    # inside atomic it joins that transaction: any number of writes, all or nothing
    with pytest.raises(RuntimeError), store.atomic():
        with store._db.write(one_statement=True) as conn:
            conn.execute(events)
            conn.execute(events)
        raise RuntimeError("roll it all back")
    assert [e.kind for e in store.events()].count("test") == 1


def test_a_move_with_its_attempt_begun_or_ended_is_one_statement(store: Store) -> None:
    """``start_attempt`` / ``finish_attempt``: the move, its event and the attempt's
    row, written together only when the move's guards match (PostgreSQL: one statement
    in autocommit; SQLite: one transaction)."""
    job = store.submit("training", "j", "kind: training\nname: j\nrun: 'true'\n")
    rec = store.transition(job, S.PENDING, S.PLACING, "placing", attempt=1)
    assert rec is not None
    # a stale guard: no move, no event, no attempt
    n = len(store.events(job))
    assert store.start_attempt(job, 1, {"a": 1}, S.PLACING, S.PROVISIONING, "x",
                               expected_version=rec.version - 1) is None  # fmt: skip
    assert len(store.events(job)) == n and store.attempts(job) == []
    with _sent(store) as sent:
        moved = store.start_attempt(
            job, 1, {"allocation_id": "a-1"}, S.PLACING, S.PROVISIONING, "allocated a-1",
            expected_version=rec.version,
        )  # fmt: skip
    assert moved is not None and moved.state is S.PROVISIONING and moved.version == rec.version + 1
    if _pg(store):
        (only,) = sent
        assert "INSERT INTO attempts" in only[0] and only[1] is True
    (att,) = store.attempts(job)
    assert (att.attempt, att.allocation, att.state, att.ended_at) == (1, {"allocation_id": "a-1"},
                                                                      "active", None)  # fmt: skip
    ev = store.events(job)[-1]
    assert (ev.kind, ev.from_state, ev.to_state, ev.reason) == (
        "transition", "PLACING", "PROVISIONING", "allocated a-1",
    )  # fmt: skip
    running = store.transition(job, S.PROVISIONING, S.RUNNING, "started")
    assert running is not None
    # a stale guard again: the attempt does not end
    assert store.finish_attempt(job, 1, "succeeded", S.RUNNING, S.SUCCEEDED, "x",
                                expected_version=running.version - 1) is None  # fmt: skip
    assert store.attempts(job)[0].ended_at is None
    with _sent(store) as sent:
        done = store.finish_attempt(
            job, 1, "succeeded", S.RUNNING, S.SUCCEEDED, "all 1 node(s) exited 0",
            expected_version=running.version, exit_code=0,
        )  # fmt: skip
    assert done is not None and done.state is S.SUCCEEDED and done.exit_code == 0
    assert done.finished_at is not None
    if _pg(store):
        (only,) = sent
        assert "UPDATE attempts" in only[0] and only[1] is True
    (att,) = store.attempts(job)
    assert (att.state, att.ended_at) == ("succeeded", done.finished_at)
    ev = store.events(job)[-1]
    assert (ev.from_state, ev.to_state, ev.data) == ("RUNNING", "SUCCEEDED", {"exit_code": 0})
    # the first end wins
    assert store.end_attempt(job, 1, "failed").state == "succeeded"
