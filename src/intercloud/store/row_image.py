"""The live rows of one table, kept in memory and brought up to date from the rows
changed since the last read (``change_seq``, migration 0007).

The control loop reads every live instance, active workload and live node several times
a step. ``RowCache`` spared decoding unchanged rows but still ran a query over all of
them (10,000 instances: ~35 ms of CPU a read). ``RowImage.rows`` instead runs, in one
snapshot (one statement on PostgreSQL, one read transaction on SQLite: below):

1. the low mark: rows changed after the last read have ``change_seq >=`` it
   (PostgreSQL: the oldest transaction still running, so one that commits after the
   read is caught by the next; SQLite: the counter plus one, writers being serial);
2. the rows with ``change_seq`` at or above the previous read's mark (all rows in a
   tracked state on the first read), each decoded unless its ``change_seq`` is the
   cached one; a row whose state left the tracked set leaves the image;
3. the table's deletion stamp (``row_deletions``, migration 0010: replaced by trigger
   whenever rows of the table are deleted, as ``store.testing.reset_database`` does):
   if it is not the one of the last read, the image is read again in full. (It used to
   count the tracked rows, a scan of 10,000 instances, ~3 ms on PostgreSQL; the stamp
   is one primary-key lookup, so every read checks it.) The store never deletes these
   rows itself; another process's deletion is noticed at the next read.

The image's sorted list and its kept filters and groupings (``filtered``, ``group``) are
patched in place (under the image's lock; readers get copies) when a
read changed a few rows (each found or placed by bisection on ``order``), instead of
sorting 10,000 records and filtering them again after each of the loop's writes; a
change whose order key ties another row's is left to a full sort, so the list is always
the one ``sorted`` makes of the rows.

Inside a loop step (``ReadEpochs``) the store's own committed writes are carried into
the image from the rows they gave back (``carry``, ``write_journal``): a step of
interleaved writes and reads reads each image from the database about once, not after
every write.

The image keeps a log of the records it changed (``read_since``): a caller that walks
every row each step (the loop's job walk) can look at the rows changed since its last
walk instead. A full read (the first, or after rows vanished) and a log grown past
``_LOG_MAX`` start the log afresh, and a cursor from before answers "unknown".

On PostgreSQL the three are one statement (the low mark and the stamp joined to the
changed rows), which sees one snapshot by itself: sent outside a transaction, it is one
round trip where a REPEATABLE READ transaction of three statements took five. On
SQLite the read transaction is the snapshot. Thread-safe (one lock per image).
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Collection, Hashable, Iterable
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from intercloud.store.write_journal import WriteJournal

__all__ = ["Cursor", "RowImage", "carry_images", "low_mark"]

R = TypeVar("R")
T = TypeVar("T")
_MISSING = object()
#: more changed rows than this in one read: sort again rather than patch
_PATCH_MAX = 256
#: changes kept in the log before it starts afresh (a reader then walks everything)
_LOG_MAX = 1 << 16

#: where a reader of the change log is: (the log's generation, its position in it)
Cursor = tuple[int, int]

_PG_LOW_EXPR = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
_PG_LOW = sa.text(f"SELECT {_PG_LOW_EXPR}")
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
    callers expect. ``also``: a second condition, as SQL and as a test of a row.
    ``stamps``: the ``row_deletions`` table (module docstring, step 3); None: rows of
    ``table`` are never deleted under the image."""

    def __init__(
        self,
        table: sa.Table,
        select: sa.Select[Any],
        decode: Callable[[RowMapping], R],
        tracked: Collection[str],
        order: Callable[[R], Any],
        also: tuple[sa.ColumnElement[bool], Callable[[RowMapping], bool]] | None = None,
        stamps: sa.Table | None = None,
    ) -> None:
        self._table = table
        self.table_name = table.name
        self._select = select
        self._decode = decode
        self.tracked = frozenset(tracked)
        self._order = order
        self._where: sa.ColumnElement[bool] = table.c.state.in_(self.tracked)
        if also is not None:
            self._where = sa.or_(self._where, also[0])
        self._also = also[1] if also is not None else None
        # the rows changed since a mark, built once; the mark inline, not a parameter:
        # a generic plan (PostgreSQL's, for a statement prepared after five runs) scans
        # the whole table for it
        low: sa.BindParameter[int] = sa.bindparam("low", type_=sa.BigInteger, literal_execute=True)
        self._since = select.where(table.c.change_seq >= low)
        # the deletion stamp (step 3), as a column of one row
        self._stamp: sa.ScalarSelect[Any] | None = None
        if stamps is not None:
            pick = sa.select(stamps.c.stamp).where(stamps.c.name == table.name)
            self._stamp = pick.scalar_subquery()
        # PostgreSQL: the three steps as one statement (module docstring), by whether
        # it reads everything
        self._one = {
            True: self._one_statement(select.where(self._where)),
            False: self._one_statement(self._since),
        }
        self._lock = threading.Lock()
        self._low: int | None = None  # None: read everything next time
        self._by_id: dict[int, tuple[int, R]] = {}  # id -> (change_seq, record)
        self._sorted: list[R] | None = []
        self._token: Hashable | None = None  # the ``read`` token the image is as of
        self._stamp_seen: str | None = None  # the deletion stamp as of the last read
        # what callers derive from the rows (``derived``), until they change
        self._derived: dict[Hashable, Any] = {}
        # filters of the rows (``filtered``): key -> (test, rows passing it, in order)
        self._filters: dict[Hashable, tuple[Callable[[R], bool], list[R]]] = {}
        # groupings of the rows (``group``): key -> (group of a row, group -> rows)
        self._groups: dict[Hashable, tuple[Callable[[R], Hashable], dict[Hashable, list[R]]]] = {}
        # the change log (``read_since``): (record, still in the image) per change, the
        # new record or, for a row that left, the old one; positions count from
        # ``_log_base``; ``_log_gen`` grows whenever the log starts afresh
        self._log: list[tuple[R, bool]] = []
        self._log_base = 0
        self._log_gen = 0

    def covers(self, states: Collection[str]) -> bool:
        """Whether a read of rows in ``states`` can be answered from this image."""
        return bool(states) and self.tracked.issuperset(states)

    def rows(self, conn: Connection) -> list[R]:
        """Every tracked row as of ``conn``'s snapshot, in ``order`` (a fresh list)."""
        with self._lock:
            self._refresh(conn)
            self._token = None
            return self._listed()

    def read(
        self, snapshot: Callable[[], AbstractContextManager[Connection]], token: Hashable | None
    ) -> list[R]:
        """``rows`` over a connection opened by ``snapshot`` (``Database.read``: on
        PostgreSQL the image reads in one statement), or, when ``token`` is
        the one of the last read, that read's rows without asking the database (None:
        always ask). The store's token changes with each of its writes and each step of
        the loop (``Store.coalesced_reads``)."""
        with self._lock:
            self._read(snapshot, token)
            return self._listed()

    def refresh(
        self, snapshot: Callable[[], AbstractContextManager[Connection]], token: Hashable | None
    ) -> None:
        """``read`` without the copy of the rows: for a caller that goes on to
        ``filtered`` or ``group``."""
        with self._lock:
            self._read(snapshot, token)

    def read_since(
        self,
        snapshot: Callable[[], AbstractContextManager[Connection]],
        token: Hashable | None,
        cursor: Cursor | None,
    ) -> tuple[list[R], list[tuple[R, bool]] | None, Cursor]:
        """``read``'s rows, the changes since ``cursor`` and the cursor after them, in
        one hold of the lock (so the rows are exactly ``cursor`` plus those changes).
        A change is (the record, whether its row is still in the image): the new
        record, or the last one of a row that left. Changes: None when the log cannot
        tell (no cursor, or the log started afresh since): the caller looks at every
        row. A row changed twice is in the list twice."""
        with self._lock:
            self._read(snapshot, token)
            rows = self._listed()
            log, base = self._log, self._log_base
            changes = None
            if cursor is not None and cursor[0] == self._log_gen:
                changes = log[cursor[1] - base :]
            return rows, changes, (self._log_gen, base + len(log))

    def _read(
        self, snapshot: Callable[[], AbstractContextManager[Connection]], token: Hashable | None
    ) -> None:
        if token is None or token != self._token:
            with snapshot() as conn:
                self._refresh(conn)
            self._token = token

    def carry(self, rows: list[RowMapping] | None, before: int, after: int) -> None:
        """A write transaction moved the store's write generation from ``before`` to
        ``after`` (read tokens are ``(epoch, generation)``: ``ReadEpochs``) and wrote
        ``rows`` (full rows, as ``select`` gives them) to this table, all it wrote there
        (None: something it wrote there is not among them, ``write_journal``). When the
        image was current at ``before``, it takes the rows and is current at ``after``:
        the next read of the step does not go to the database. Else nothing changes
        (also while another thread holds the image, reading it: a writer never waits
        for a read, and the image is read again)."""
        if rows is None or not self._lock.acquire(blocking=False):
            return
        try:
            token = self._token
            if not isinstance(token, tuple) or token[1] != before:
                return
            self._take_rows(rows, skip_same_seq=False)
            self._token = (token[0], after)
        finally:
            self._lock.release()

    def _take_rows(self, rows: Iterable[RowMapping], skip_same_seq: bool) -> None:
        """Put ``rows`` (full rows) in the image, or take out those no longer tracked.
        ``skip_same_seq``: a row whose ``change_seq`` is the kept one is the kept row
        (a database read; a carried write may rewrite a row of its own transaction)."""
        by_id, decode, tracked, also = self._by_id, self._decode, self.tracked, self._also
        changes: list[tuple[R | None, R | None]] = []
        for row in rows:
            ident = row["id"]
            # (no change_seq given: -1, so the next database read decodes it again)
            seq = row.get("change_seq", -1)
            hit = by_id.get(ident)
            if skip_same_seq and hit is not None and hit[0] == seq:
                continue  # a transaction that was running at the last read: same row
            if row["state"] in tracked or (also is not None and also(row)):
                rec = decode(row)
                by_id[ident] = (seq, rec)
                changes.append((None if hit is None else hit[1], rec))
            elif hit is not None:
                del by_id[ident]
                changes.append((hit[1], None))
        if changes:
            self._changed(changes)
            log = self._log
            for old, new in changes:  # (a row that left has an old record)
                log.append((new, True) if new is not None else (cast(R, old), False))
            if len(log) > _LOG_MAX:
                self._restart_log()

    def _restart_log(self) -> None:
        """Start the change log afresh: every earlier cursor now reads "unknown"."""
        self._log = []
        self._log_base = 0
        self._log_gen += 1

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

    def filtered(self, key: Hashable, test: Callable[[R], bool]) -> list[R]:
        """The rows passing ``test`` (a pure function of a record), in order, as of the
        last read (a fresh list): the filter is kept by ``key`` and patched with each
        read's changed rows, not made again."""
        with self._lock:
            if self._sorted is None:
                self._listed()
            got = self._filters.get(key)
            if got is None:
                assert self._sorted is not None
                got = self._filters[key] = (test, [r for r in self._sorted if test(r)])
            return list(got[1])  # (a copy: the kept list is patched by later reads)

    def group(self, key: Hashable, group: Callable[[R], Hashable], g: Hashable) -> list[R]:
        """The rows whose ``group(row)`` (a pure function of a record; None: in no
        group) is ``g``, in order, as of the last read (a fresh list): the grouping is
        kept by ``key`` and patched as ``filtered``'s lists are."""
        with self._lock:
            if self._sorted is None:
                self._listed()
            got = self._groups.get(key)
            if got is None:
                assert self._sorted is not None
                by: dict[Hashable, list[R]] = {}
                for r in self._sorted:
                    k = group(r)
                    if k is not None:
                        by.setdefault(k, []).append(r)
                got = self._groups[key] = (group, by)
            return list(got[1].get(g, ()))

    def _listed(self) -> list[R]:
        if self._sorted is None:
            self._derived = {}
            self._filters = {}
            self._groups = {}
            self._sorted = sorted((rec for _, rec in self._by_id.values()), key=self._order)
        return list(self._sorted)

    def _changed(self, changes: list[tuple[R | None, R | None]]) -> None:
        """Bring the sorted list and the kept filters to the rows after ``changes``
        ((old, new) records; None: no such row), or drop them for a full sort."""
        self._derived = {}
        rows = self._sorted
        if rows is None:
            return
        if len(changes) > _PATCH_MAX:
            self._sorted = None
            return
        lists = [rows, *(kept for _, kept in self._filters.values())]
        tests = [None, *(test for test, _ in self._filters.values())]
        groups = list(self._groups.values())
        try:
            for old, new in changes:
                for test, kept in zip(tests, lists, strict=True):
                    if old is not None and (test is None or test(old)):
                        self._take(kept, old)
                    if new is not None and (test is None or test(new)):
                        self._put(kept, new)
                for group, by in groups:
                    if old is not None and (g := group(old)) is not None:
                        self._take(by[g], old)  # (a KeyError: sorted again below)
                        if not by[g]:
                            del by[g]
                    if new is not None and (g := group(new)) is not None:
                        self._put(by.setdefault(g, []), new)
        except (_Resort, TypeError, KeyError):
            self._sorted = None

    def _take(self, rows: list[R], rec: R) -> None:
        """Remove ``rec`` (that very record) from ``rows``, in order."""
        i = bisect_left(rows, self._order(rec), key=self._order)
        if i == len(rows) or rows[i] is not rec:
            raise _Resort  # not found (a tie before it): sort
        del rows[i]

    def _put(self, rows: list[R], rec: R) -> None:
        """Insert ``rec`` into ``rows`` where ``sorted`` puts it."""
        order = self._order
        k = order(rec)
        i = bisect_left(rows, k, key=order)
        if i < len(rows) and order(rows[i]) == k:
            raise _Resort  # a tie: the full sort places it
        rows.insert(i, rec)

    def _one_statement(self, rows: sa.Select[Any]) -> sa.Select[Any]:
        """``SELECT head.low[, head.stamp], r.* FROM (low mark[, stamp]) AS head LEFT
        JOIN (rows) AS r ON true``: at least one row, the head's values on each."""
        cols: list[Any] = [sa.literal_column(_PG_LOW_EXPR).label("ic_low")]
        if self._stamp is not None:
            cols.append(self._stamp.label("ic_stamp"))
        head = sa.select(*cols).subquery("ic_head")
        r = rows.subquery("ic_rows")
        return sa.select(head, r).select_from(head.outerjoin(r, sa.true()))

    def _refresh(self, conn: Connection) -> None:
        if conn.dialect.name == "postgresql":
            self._refresh_one(conn)
            return
        low = low_mark(conn)
        stamp = None if self._stamp is None else conn.execute(sa.select(self._stamp)).scalar()
        if stamp != self._stamp_seen:
            self._low = None  # rows vanished (a table emptied): read all again
        full = self._low is None
        if full:
            self._by_id = {}
            self._sorted = None
            stmt = self._select.where(self._where)
        else:
            stmt = self._since
        self._take_rows(conn.execute(stmt, {"low": self._low}).mappings(), skip_same_seq=True)
        if full:
            self._restart_log()  # (it would list every row: readers look at all anyway)
        self._low = low
        self._stamp_seen = stamp

    def _refresh_one(self, conn: Connection) -> None:
        """``_refresh`` in one statement (PostgreSQL: module docstring)."""
        full = self._low is None
        stmt = self._one[full]
        frozen = conn.execute(stmt, {"low": self._low}).freeze()
        head = frozen().first()
        assert head is not None  # (the head always gives a row)
        low = int(head[0])
        first = 1 if self._stamp is None else 2
        stamp = None if self._stamp is None else head[1]
        if not full and stamp != self._stamp_seen:
            self._low = None  # rows vanished (a table emptied): read all again
            self._refresh_one(conn)
            return
        rows = frozen().columns(*range(first, len(stmt.selected_columns))).mappings()
        if full:
            self._by_id = {}
            self._sorted = None
        self._take_rows((r for r in rows if r["id"] is not None), skip_same_seq=True)
        if full:
            self._restart_log()
        self._low = low
        self._stamp_seen = stamp


def carry_images(images: Iterable[RowImage[Any]], journal: WriteJournal, before: int,
                 after: int) -> None:  # fmt: skip
    """``Database.on_commit``: each image carries what the transaction wrote to its
    table (``RowImage.carry``)."""
    for image in images:
        image.carry(journal.rows_of(image.table_name), before, after)


class _Resort(Exception):
    """A change the sorted list cannot take in place: sort the rows again."""
