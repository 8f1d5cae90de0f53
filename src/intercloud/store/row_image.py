"""The live rows of one table, kept in memory and brought up to date from the rows
changed since the last read (``change_seq``, migration 0007).

The control loop reads every live instance, active workload and live node several times
a step. ``RowCache`` spared decoding unchanged rows but still ran a query over all of
them (10,000 instances: ~35 ms of CPU a read). ``RowImage.rows`` instead runs, in one
read transaction of one snapshot:

1. the low mark: rows changed after the last read have ``change_seq >=`` it
   (PostgreSQL: the oldest transaction still running, so one that commits after the
   read is caught by the next; SQLite: the counter plus one, writers being serial);
2. the rows with ``change_seq`` at or above the previous read's mark (all rows in a
   tracked state on the first read), each decoded unless its ``change_seq`` is the
   cached one; a row whose state left the tracked set leaves the image;
3. a count of the tracked rows: if it differs from the image (rows deleted, as
   ``store.testing.reset_database`` does), the image is read again in full.

On PostgreSQL the transaction is REPEATABLE READ, so the three statements see one
snapshot. Thread-safe (one lock per image).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Hashable
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

__all__ = ["RowImage", "low_mark"]

R = TypeVar("R")
T = TypeVar("T")
_MISSING = object()

_PG_LOW = sa.text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
_SQLITE_LOW = sa.text("SELECT value + 1 FROM change_counter WHERE id = 1")


def low_mark(conn: Connection) -> int:
    """Every row written after this point of ``conn``'s snapshot (or by a transaction
    still running then) has ``change_seq >=`` the returned number."""
    stmt = _PG_LOW if conn.dialect.name == "postgresql" else _SQLITE_LOW
    value = conn.execute(stmt).scalar()
    if value is None:  # SQLite counter row missing: the schema predates 0007's seed
        raise RuntimeError("change_counter has no row: the store's schema is damaged")
    return int(value)


class RowImage(Generic[R]):
    """The rows of ``table`` whose ``state`` is in ``tracked``, or that ``also`` keeps
    (module docstring).

    ``select`` selects the full rows (with ``id``, ``state`` and ``change_seq`` among
    its columns); ``decode`` makes a record of one; ``order`` sorts the records as the
    callers expect. ``also``: a second condition, as SQL and as a test of a row."""

    def __init__(
        self,
        table: sa.Table,
        select: sa.Select[Any],
        decode: Callable[[RowMapping], R],
        tracked: Collection[str],
        order: Callable[[R], Any],
        also: tuple[sa.ColumnElement[bool], Callable[[RowMapping], bool]] | None = None,
    ) -> None:
        self._table = table
        self._select = select
        self._decode = decode
        self.tracked = frozenset(tracked)
        self._order = order
        self._where: sa.ColumnElement[bool] = table.c.state.in_(self.tracked)
        if also is not None:
            self._where = sa.or_(self._where, also[0])
        self._also = also[1] if also is not None else None
        self._lock = threading.Lock()
        self._low: int | None = None  # None: read everything next time
        self._by_id: dict[int, tuple[int, R]] = {}  # id -> (change_seq, record)
        self._sorted: list[R] | None = []
        self._token: Hashable | None = None  # the ``read`` token the image is as of
        # what callers derive from the rows (``derived``), until they change
        self._derived: dict[Hashable, Any] = {}

    def covers(self, states: Collection[str]) -> bool:
        """Whether a read of rows in ``states`` can be answered from this image."""
        return bool(states) and self.tracked.issuperset(states)

    def rows(self, conn: Connection) -> list[R]:
        """Every tracked row as of ``conn``'s snapshot, in ``order`` (a fresh list)."""
        with self._lock:
            self._refresh(conn)
            self._token = None
            return self._listed()

    def read(self, snapshot: Callable[[], AbstractContextManager[Connection]],
             token: Hashable | None) -> list[R]:  # fmt: skip
        """``rows`` in a read transaction opened by ``snapshot``, or, when ``token`` is
        the one of the last read, that read's rows without asking the database (None:
        always ask). The store's token changes with each of its writes and each step of
        the loop (``Store.coalesced_reads``)."""
        with self._lock:
            if token is None or token != self._token:
                with snapshot() as conn:
                    self._refresh(conn)
                self._token = token
            return self._listed()

    def derived(self, key: Hashable, make: Callable[[list[R]], T]) -> T:
        """``make(rows)`` on the image's rows as of its last read, kept (by ``key``)
        until a read changes them: the loop's filters by state or job over 10,000
        instances run once per change instead of once per call. ``make`` must not
        keep or mutate the list; what it returns is shared by the callers."""
        with self._lock:
            if self._sorted is None:
                self._listed()
            got = self._derived.get(key, _MISSING)
            if got is _MISSING:
                assert self._sorted is not None
                got = self._derived[key] = make(self._sorted)
            return cast(T, got)

    def _listed(self) -> list[R]:
        if self._sorted is None:
            self._derived = {}
            self._sorted = sorted((rec for _, rec in self._by_id.values()), key=self._order)
        return list(self._sorted)

    def _refresh(self, conn: Connection) -> None:
        t = self._table
        low = low_mark(conn)
        if self._low is None:
            self._by_id = {}
            self._sorted = None
            stmt = self._select.where(self._where)
        else:
            stmt = self._select.where(t.c.change_seq >= self._low)
        by_id = self._by_id
        decode = self._decode
        tracked = self.tracked
        also = self._also
        changed = False
        for row in conn.execute(stmt).mappings():
            ident = row["id"]
            seq = row["change_seq"]
            hit = by_id.get(ident)
            if hit is not None and hit[0] == seq:
                continue  # a transaction that was running at the last read: same row
            if row["state"] in tracked or (also is not None and also(row)):
                by_id[ident] = (seq, decode(row))
                changed = True
            elif hit is not None:
                del by_id[ident]
                changed = True
        if changed:
            self._sorted = None
        counted = sa.select(sa.func.count()).select_from(t).where(self._where)
        count = conn.execute(counted).scalar_one()
        if count != len(by_id) and self._low is not None:
            self._low = None  # rows vanished (a table emptied): read all again
            self._refresh(conn)
            return
        self._low = low
