"""A loop step's transactions on one connection (``Database.pinned``, entered by
``Store.coalesced_reads``): one backend for the step's reads and writes on PostgreSQL,
each still its own transaction at its own isolation level; a transaction that fails
drops the pinned connection and the step goes on with fresh ones; a transaction opened
inside another gets its own connection; SQLite is left as it was."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from intercloud.store import Store, StoreError

_PID = sa.text("SELECT pg_backend_pid()")
_LEVEL = sa.text("SHOW transaction_isolation")


def _pid_and_level(conn: sa.Connection) -> tuple[int, str]:
    return int(conn.execute(_PID).scalar_one()), str(conn.execute(_LEVEL).scalar_one())


def test_a_step_uses_one_connection_at_the_right_isolation(store: Store) -> None:
    db = store._db
    if db.is_sqlite:
        with store.coalesced_reads():
            assert getattr(db._pin, "conn", None) is None  # SQLite: nothing pinned
        return
    checkouts: list[object] = []
    sa.event.listen(db.engine, "checkout", lambda *a: checkouts.append(a))
    with store.coalesced_reads():
        with db.read_snapshot() as conn:
            snap = _pid_and_level(conn)
        with db.write() as conn:
            wrote = _pid_and_level(conn)
            conn.execute(sa.text("SELECT 1"))
        with db.read() as conn:
            read = _pid_and_level(conn)
        store.submit("training", "a", "run: x\n")  # the store's own methods too
        assert [w.name for w in store.list_workloads()] == ["a"]
        with db.read() as conn:
            again = _pid_and_level(conn)
            with db.read() as inner:  # inside another: its own connection
                assert _pid_and_level(inner)[0] != again[0]
    assert len(checkouts) == 2  # the step's, and the inner read's
    assert snap == (wrote[0], "repeatable read")
    # the snapshot's level does not stay on the pinned connection
    assert wrote == read == again == (snap[0], "read committed")
    with db.read() as conn:  # after the step: back to the pool's checkouts
        assert _pid_and_level(conn)[1] == "read committed"


def test_a_failed_transaction_drops_the_pinned_connection(store: Store) -> None:
    db = store._db
    if db.is_sqlite:
        pytest.skip("nothing is pinned on SQLite")
    with store.coalesced_reads():
        with db.read() as conn:
            assert _pid_and_level(conn)[1] == "read committed"
        with pytest.raises(StoreError), db.write() as conn:
            conn.execute(sa.text("SELECT * FROM no_such_table"))
        assert getattr(db._pin, "conn", None) is None
        with db.read() as conn:  # the step goes on, on a fresh checkout
            assert _pid_and_level(conn)[1] == "read committed"
        store.submit("training", "b", "run: x\n")
        assert [w.name for w in store.list_workloads()] == ["b"]
