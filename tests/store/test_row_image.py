"""Reads of live rows through the row image (``store.row_image``): after any sequence
of writes, what a long-lived store answers equals what a store opened afresh reads in
full; a write committed after a read by a transaction that was running then is seen;
rows deleted under the image are noticed; the triggers behind ``change_seq`` exist."""

from __future__ import annotations

import random
from typing import Any

import pytest
import sqlalchemy as sa

from intercloud.control.states import JobState
from intercloud.model import PricingKind
from intercloud.providers.contract import InstanceState as I
from intercloud.store import NodeState, Store, open_store
from intercloud.store.testing import FakeClock, reset_database

OFFER = ("aws", "us-east-1", "us-east-1a", "p5.48xlarge")
ACTIVE = [s for s in JobState if not s.terminal]
LIVE = [I.REQUESTED, I.ALLOCATED, I.RUNNING, I.DRAINING, I.TERMINATING]
#: one forward path of each kind of row (every step a legal, guarded transition)
JOB_PATH = [JobState.PENDING, JobState.PLACING, JobState.PROVISIONING, JobState.RUNNING,
            JobState.SUCCEEDED]  # fmt: skip
INSTANCE_PATH = [I.REQUESTED, I.ALLOCATED, I.RUNNING, I.DRAINING, I.TERMINATING, I.TERMINATED]


def _reads(store: Store) -> tuple[object, ...]:
    return (
        store.list_workloads(states=ACTIVE),
        store.list_workloads(states=[JobState.RUNNING], tenant="default"),
        store.list_workloads(states=ACTIVE, desired="cancel"),
        store.list_workloads(states=[JobState.PENDING, JobState.RUNNING]),  # a kept filter
        store.instances(states=LIVE),
        store.instances(states=[I.RUNNING], bound=False),
        store.instances(states=LIVE, provider="aws", request_id="r3"),
        store.instances(bound=True),
        store.instances(provider="aws", bound=True),
        # by job and by state: filters the image keeps until its rows change
        *(store.instances(states=LIVE, workload_id=j) for j in range(1, 4)),
        store.instances(bound=True, workload_id=2),
        # by job in any state (the image keeps every bound row), with a provider
        *(store.instances(workload_id=j) for j in range(1, 4)),
        store.instances(workload_id=1, provider="aws"),
        store.instances(states=[I.RUNNING], provider="aws"),
        store.live_nodes(),
        # the live nodes by job: a grouping the image keeps
        *(store.live_nodes_of(j) for j in range(1, 4)),
    )


def _random_write(store: Store, rng: random.Random, made: dict[str, list[int]]) -> None:
    """One write of the kinds the control loop and the API make."""
    roll = rng.random()
    if roll < 0.15 or not made["jobs"]:
        made["jobs"].append(store.submit("training", f"j{len(made['jobs'])}", "run: x\n"))
    elif roll < 0.35:
        w = store.get(rng.choice(made["jobs"]))
        if not w.state.terminal:
            nxt = JOB_PATH[JOB_PATH.index(w.state) + 1]
            store.transition(w.id, w.state, nxt, "moved", expected_version=w.version)
    elif roll < 0.42:
        w = store.get(rng.choice(made["jobs"]))
        store.set_fields(w.id, w.version, reason=f"r{rng.random():.3f}")
    elif roll < 0.47:
        store.request_cancel(rng.choice(made["jobs"]))
    elif roll < 0.57:
        n = len(made["requests"])
        rows = store.request_instances(f"r{n}", rng.randint(1, 3), OFFER, PricingKind.SPOT, 2.0)
        made["requests"].append(n)
        made["instances"].extend(r.id for r in rows)
    elif roll < 0.75 and made["instances"]:
        rec = store.get_instance(rng.choice(made["instances"]))
        assert rec is not None
        st = I(rec.state)
        if st in INSTANCE_PATH[:-1]:
            to = INSTANCE_PATH[INSTANCE_PATH.index(st) + 1]
            extra: dict[str, Any] = {}
            if to is I.ALLOCATED:
                extra["provider_instance_id"] = f"i-{rec.id}"
            store.transition_instance(
                rec.id, st, to, "moved", expected_version=rec.version, **extra
            )
    elif roll < 0.82 and made["instances"]:
        # bind an idle running instance to a job, or give a bound one back
        recs = store.instances(states=[I.RUNNING, I.TERMINATED])
        idle = [r.id for r in recs if r.workload_id is None and r.state == I.RUNNING.value]
        bound = [r for r in recs if r.workload_id is not None]
        if idle and rng.random() < 0.6:
            store.bind_instances(rng.choice(made["jobs"]), 1, [rng.choice(idle)])
        elif bound:
            r = rng.choice(bound)
            assert r.workload_id is not None and r.attempt is not None
            store.unbind_instances(r.workload_id, r.attempt)
    elif roll < 0.86 and made["instances"]:
        store.agent_heartbeat(rng.choice(made["instances"]), address=f"10.0.0.{rng.randint(1, 9)}")
    else:
        w = store.get(rng.choice(made["jobs"]))
        nodes = store.nodes(w.id, 1)
        live = [n for n in nodes if n.state in (NodeState.STARTING, NodeState.RUNNING)]
        if live and rng.random() < 0.6:
            node = rng.choice(live)
            if node.state is NodeState.STARTING:
                store.record_node_started(w.id, 1, node.rank, "h", 100 + node.rank, 7)
            else:
                store.record_node_ended(w.id, 1, node.rank, NodeState.EXITED, exit_code=0)
        else:
            store.begin_attempt(w.id, 1)
            store.record_node_starting(w.id, 1, len(nodes), "local")


@pytest.mark.parametrize("seed", [1, 2])
def test_a_kept_image_reads_what_a_fresh_store_reads(
    db_url: str, clock: FakeClock, seed: int
) -> None:
    rng = random.Random(seed)
    made: dict[str, list[int]] = {"jobs": [], "requests": [], "instances": []}
    with open_store(db_url, clock=clock) as kept:
        _reads(kept)
        for step in range(12):
            for _ in range(rng.randint(1, 12)):
                _random_write(kept, rng, made)
            with open_store(db_url, clock=clock) as fresh:
                assert _reads(kept) == _reads(fresh), f"seed {seed}, step {step}"
        unchanged = kept.instances(states=LIVE)
        again = kept.instances(states=LIVE)
        assert all(a is b for a, b in zip(unchanged, again, strict=True))  # not decoded again


def test_a_write_committed_after_the_read_that_began_before_it_is_seen(
    store: Store, db_url: str
) -> None:
    j = store.submit("training", "j", "run: x\n")
    (iid,) = [r.id for r in store.request_instances("r1", 1, OFFER, PricingKind.SPOT, 1.0)]
    assert store.list_workloads(states=ACTIVE)[0].reason is None
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            tx = conn.begin()
            conn.execute(sa.text("UPDATE workloads SET reason = 'late' WHERE id = :j"), {"j": j})
            conn.execute(sa.text("UPDATE instances SET address = 'late' WHERE id = :i"), {"i": iid})
            # the loop reads while that transaction is still open: it sees the old rows
            assert store.list_workloads(states=ACTIVE)[0].reason is None
            assert store.instances(states=LIVE)[0].address is None
            if store.dialect == "postgresql":  # (SQLite runs one writer at a time)
                store.submit("training", "k", "run: x\n")  # others write and commit meanwhile
                assert len(store.list_workloads(states=ACTIVE)) == 2
            tx.commit()
    finally:
        engine.dispose()
    assert store.list_workloads(states=ACTIVE)[0].reason == "late"
    assert store.instances(states=LIVE)[0].address == "late"


def test_rows_deleted_under_the_image_are_noticed(db_url: str, clock: FakeClock) -> None:
    with open_store(db_url, clock=clock) as store:
        for i in range(3):
            store.submit("training", f"j{i}", "run: x\n")
        store.request_instances("r1", 2, OFFER, PricingKind.SPOT, 1.0)
        assert len(store.list_workloads(states=ACTIVE)) == 3
        assert len(store.instances(states=LIVE)) == 2
        reset_database(db_url)  # ids restart at 1 and the counter at 0
        assert store.list_workloads(states=ACTIVE) == []
        assert store.instances(states=LIVE) == []
        j = store.submit("training", "again", "run: x\n")
        assert [w.name for w in store.list_workloads(states=ACTIVE)] == ["again"]
        assert store.get(j).name == "again"


def test_in_a_step_rows_are_never_counted_and_deletions_seen_at_the_next_step(
    db_url: str, clock: FakeClock
) -> None:
    """A read checks the table's deletion stamp (``row_deletions``, one key lookup) and
    never counts the tracked rows (a scan of 10,000 instances). Inside
    ``coalesced_reads`` a read after this store's own write fetches the changed rows; a
    deletion by another process is noticed at the next step."""
    counts: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "count(" in statement.lower():
            counts.append(statement)

    with open_store(db_url, clock=clock) as store:
        store.request_instances("r1", 2, OFFER, PricingKind.SPOT, 1.0)
        assert len(store.instances(states=LIVE)) == 2
        sa.event.listen(sa.Engine, "before_cursor_execute", count)
        try:
            with store.coalesced_reads():
                store.instances(states=LIVE)
                for n in range(3):
                    store.request_instances(f"r{n + 2}", 1, OFFER, PricingKind.SPOT, 1.0)
                    assert len(store.instances(states=LIVE)) == 3 + n  # own writes seen
                assert counts == []
                reset_database(db_url)
            with store.coalesced_reads():
                assert store.instances(states=LIVE) == []  # the next step notices
        finally:
            sa.event.remove(sa.Engine, "before_cursor_execute", count)


@pytest.mark.parametrize("table", ["instances", "nodes", "workloads"])
def test_a_row_deleted_by_another_process_leaves_the_image(
    db_url: str, clock: FakeClock, table: str
) -> None:
    """One row deleted with plain SQL (an operator's, another process's): the next read
    answers without it, as a fresh store does; the rows that stay keep their records."""
    with open_store(db_url, clock=clock) as store:
        jobs = [store.submit("training", f"j{i}", "run: x\n") for i in range(3)]
        for j in jobs:
            store.record_node_starting(j, 1, 0, "local")
        store.request_instances("r1", 3, OFFER, PricingKind.SPOT, 1.0)
        before = (*_reads(store), store.live_nodes())
        victim = {"instances": "id = 2", "nodes": "id = 2", "workloads": "id = 2"}[table]
        engine = sa.create_engine(db_url)
        try:
            with engine.begin() as conn:
                if table == "workloads":  # (the rows that point at it go with it)
                    for child in ("nodes", "events", "attempts"):
                        conn.execute(sa.text(f"DELETE FROM {child} WHERE workload_id = 2"))
                conn.execute(sa.text(f"DELETE FROM {table} WHERE {victim}"))
        finally:
            engine.dispose()
        after = (*_reads(store), store.live_nodes())
        assert after != before
        with open_store(db_url, clock=clock) as fresh:
            assert after == (*_reads(fresh), fresh.live_nodes())


def test_every_write_path_stamps_a_growing_change_seq(store: Store, db_url: str) -> None:
    """The stamp comes from triggers (no writer can forget it); they exist at head."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                sql = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
            else:
                sql = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            names = {r[0] for r in conn.execute(sa.text(sql))}
        for table in ("workloads", "instances", "nodes"):
            assert any(n.startswith(f"{table}_change_seq") for n in names), (table, names)
            assert f"{table}_row_deleted" in names, (table, names)

        def seq(table: str, ident: int) -> int:
            with engine.connect() as conn:
                q = sa.text(f"SELECT change_seq FROM {table} WHERE id = :i")
                return int(conn.execute(q, {"i": ident}).scalar_one())

        j = store.submit("training", "j", "run: x\n")
        first = seq("workloads", j)
        with engine.begin() as conn:  # a raw write, as the agent's test helpers make
            conn.execute(sa.text("UPDATE workloads SET reason = 'x' WHERE id = :j"), {"j": j})
        assert first > 0 and seq("workloads", j) > first
    finally:
        engine.dispose()
