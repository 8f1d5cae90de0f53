"""Row images carry the store's own committed writes (``store.write_journal``): inside a
step, a read after a write the journal fully reports does not go to the database, and
what it answers equals a fresh store's read; a write the journal cannot report (a bulk
update, raw SQL, a rolled-back transaction) sends the next read to the database."""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from test_row_image import (
    ACTIVE,
    INSTANCE_PATH,
    JOB_PATH,
    LIVE,
    OFFER,
    _random_write,
    _reads,
)  # fmt: skip

from intercloud.control.states import JobState
from intercloud.model import PricingKind
from intercloud.providers.contract import InstanceState as I
from intercloud.store import InvalidRequest, Store, open_store
from intercloud.store.testing import FakeClock
from intercloud.store.write_journal import WriteJournal, note_statement


@contextmanager
def _statements(store: Store) -> Iterator[list[str]]:
    """The SQL ``store`` sends inside the block."""
    sent: list[str] = []

    def on(_conn: object, _cur: object, statement: str, *_: object) -> None:
        sent.append(statement)

    engine = store._db.engine
    event.listen(engine, "before_cursor_execute", on)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", on)


def _selects(sent: list[str]) -> list[str]:
    return [s for s in sent if s.lstrip().upper().startswith("SELECT")]


def test_a_reported_write_is_carried_and_spares_the_read(store: Store) -> None:
    a = store.submit("training", "a", "run: x\n")
    store.request_instances("r1", 2, OFFER, PricingKind.SPOT, 1.0)
    with store.coalesced_reads():
        store.list_workloads(states=ACTIVE)
        store.instances(states=LIVE)
        store.live_nodes()
        w = store.get(a)
        with _statements(store) as sent:
            moved = store.transition(a, JobState.PENDING, JobState.PLACING, "placed",
                                     expected_version=w.version)  # fmt: skip
            assert moved is not None
            writes = len(sent)
            rows = store.list_workloads(states=ACTIVE)
            live = store.instances(states=LIVE)
            store.live_nodes()
        assert _selects(sent[writes:]) == []  # every image carried, none read again
        assert [(r.id, r.state, r.version) for r in rows] == [(a, "PLACING", moved.version)]
        assert len(live) == 2
    with open_store(store._db.url) as fresh:
        assert _reads(fresh) == _reads(store)


def test_unreported_writes_send_the_next_read_to_the_database(store: Store) -> None:
    a = store.submit("training", "a", "run: x\n")
    with store.coalesced_reads():
        store.list_workloads(states=ACTIVE)
        store.instances(states=LIVE)
        w = store.get(a)
        # a bulk update (many rows, no row given back)
        store.set_reasons([(a, w.version, "held", None)])
        with _statements(store) as sent:
            assert store.list_workloads(states=ACTIVE)[0].reason == "held"
        assert _selects(sent)
        # raw SQL through the store's write transaction
        with store._db.write() as conn:
            conn.execute(sa.text("UPDATE workloads SET priority = 7 WHERE id = :i"), {"i": a})
        assert store.list_workloads(states=ACTIVE)[0].priority == 7
        # a transaction rolled back after a reported write: nothing carried
        w = store.get(a)
        with pytest.raises(RuntimeError), store.atomic():
            store.transition(a, JobState.PENDING, JobState.PLACING, "x", expected_version=w.version)
            raise RuntimeError("fails after the write")
        assert store.list_workloads(states=ACTIVE)[0].state is JobState.PENDING
        # several reported writes of one row in one transaction: the last one stands
        with store.atomic():
            m = store.transition(a, JobState.PENDING, JobState.PLACING, "1",
                                 expected_version=w.version)  # fmt: skip
            assert m is not None
            store.set_fields(a, m.version, reason="2")
        with _statements(store) as sent:
            (got,) = store.list_workloads(states=ACTIVE)
        assert _selects(sent) == []
        assert (got.state, got.reason, got.version) == (JobState.PLACING, "2", m.version + 1)


def test_another_stores_write_between_ours_is_not_hidden(store: Store, db_url: str) -> None:
    """A carried image is as of its last database read plus our own writes: another
    store's write is seen at the next step, never lost, even when our write to the
    same rows' table is carried."""
    a = store.submit("training", "a", "run: x\n")
    rows = store.request_instances("r1", 1, OFFER, PricingKind.SPOT, 1.0)
    with open_store(db_url) as other:
        with store.coalesced_reads():
            store.instances(states=LIVE)
            store.list_workloads(states=ACTIVE)
            other.transition_instance(rows[0].id, I.REQUESTED, I.ALLOCATED, "other",
                                      expected_version=rows[0].version,
                                      provider_instance_id="i-1")  # fmt: skip
            w = store.get(a)
            store.transition(a, JobState.PENDING, JobState.PLACING, "x", expected_version=w.version)
        assert store.instances(states=LIVE)[0].state == I.ALLOCATED.value
        with store.coalesced_reads():
            assert store.instances(states=LIVE)[0].state == I.ALLOCATED.value


def test_the_journal_counts_every_table_a_statement_writes() -> None:
    class Conn:
        def __init__(self) -> None:
            self.info: dict[str, object] = {}

    j = WriteJournal()
    conn = Conn()
    conn.info["intercloud_write_journal"] = j
    for sql in (
        "INSERT INTO events (a) VALUES (1)",
        "WITH w AS (INSERT INTO workloads (a) SELECT 1) SELECT * FROM w",
        'UPDATE "nodes" SET state = 1',
        "INSERT OR IGNORE INTO instances (a) VALUES (1)",
        "SELECT * FROM instances FOR UPDATE",
    ):
        note_statement(conn, sql)  # type: ignore[arg-type]
    assert j.written == {"events": 1, "workloads": 1, "nodes": 1, "instances": 1}
    assert j.rows_of("events") is None and j.rows_of("attempts") == []
    note_statement(conn, "UPDATE public.instances SET a = 1")  # type: ignore[arg-type]
    assert j.rows_of("attempts") is None  # a table it cannot name: every image reads


def _atomic_writes(store: Store, rng: random.Random, made: dict[str, list[int]]) -> None:
    """Several guarded writes in one transaction, some of one row twice (each from the
    record the last one gave back)."""
    jobs = [store.get(j) for j in rng.sample(made["jobs"], min(3, len(made["jobs"])))]
    with store.atomic():
        for w in jobs:
            if w.state.terminal:
                continue
            nxt = JOB_PATH[JOB_PATH.index(w.state) + 1]
            moved = store.transition(w.id, w.state, nxt, "moved", expected_version=w.version)
            if moved is not None and rng.random() < 0.5:
                store.set_fields(w.id, moved.version, reason=f"again {rng.random():.3f}")
        for i in rng.sample(made["instances"], min(2, len(made["instances"]))):
            rec = store.get_instance(i)
            assert rec is not None
            st = I(rec.state)
            if st in INSTANCE_PATH[:-1]:
                to = INSTANCE_PATH[INSTANCE_PATH.index(st) + 1]
                extra = {"provider_instance_id": f"i-{i}"} if to is I.ALLOCATED else {}
                store.transition_instance(i, st, to, "moved", expected_version=rec.version,
                                          **extra)  # fmt: skip


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_every_read_after_every_write_equals_a_fresh_stores(db_url: str, seed: int) -> None:
    clock = FakeClock()
    rng = random.Random(seed)
    made: dict[str, list[int]] = {"jobs": [], "requests": [], "instances": []}
    with open_store(db_url, clock=clock) as kept, open_store(db_url, clock=clock) as fresh:
        for step in range(6):
            with kept.coalesced_reads():
                _reads(kept)
                for i in range(rng.randint(3, 10)):
                    if rng.random() < 0.2 and made["jobs"]:
                        _atomic_writes(kept, rng, made)
                    elif rng.random() < 0.1 and made["jobs"]:
                        w = kept.get(rng.choice(made["jobs"]))
                        kept.set_reasons([(w.id, w.version, f"h{i}", None)])
                    else:
                        with contextlib.suppress(InvalidRequest):  # (a cancel of an ended job)
                            _random_write(kept, rng, made)
                    assert _reads(kept) == _reads(fresh), f"step {step}, write {i}"


def test_another_threads_writes_on_the_same_store_are_seen_by_the_step(store: Store) -> None:
    """The API server's thread shares the loop's store: its committed writes reach the
    step's next read, carried (a guarded write) or read again (any other)."""
    a = store.submit("training", "a", "run: x\n")
    b = store.submit("training", "b", "run: x\n")

    def other_thread(work: Callable[[], object]) -> None:
        t = threading.Thread(target=work)
        t.start()
        t.join()

    with store.coalesced_reads():
        store.list_workloads(states=ACTIVE)
        w = store.get(a)
        other_thread(lambda: store.set_fields(a, w.version, reason="from the api"))
        got = {r.id: r for r in store.list_workloads(states=ACTIVE)}
        assert got[a].reason == "from the api"

        def raw() -> None:
            with store._db.write() as conn:
                conn.execute(sa.text("UPDATE workloads SET priority = 3 WHERE id = :i"), {"i": b})

        other_thread(raw)
        got = {r.id: r for r in store.list_workloads(states=ACTIVE)}
        assert got[b].priority == 3
