"""One database handle: the engine, short transactions, and one-line errors.

Transactions are short and come in two kinds:
- ``read()``: a plain transaction (SQLite ``BEGIN``: a snapshot, never blocks writers);
- ``write()``: SQLite ``BEGIN IMMEDIATE`` takes the write lock up front, so a
  read-then-write transaction never fails half way with "database is locked" (SQLite
  cannot upgrade a read lock while another writer is active); waits up to the busy
  timeout. PostgreSQL needs nothing special: guarded ``UPDATE ... WHERE`` statements
  re-check their condition after waiting for a concurrent writer's row lock.

Any database failure other than a constraint violation leaves as ``StoreError`` with one
line naming the database; constraint violations (``sqlalchemy.exc.IntegrityError``)
propagate for the repository to turn into its own errors.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import StaticPool

from intercloud.store.errors import StoreError, StoreLocked
from intercloud.store.private import make_private
from intercloud.store.write_journal import (
    WriteJournal,
    close_journal,
    open_journal,
    track_writes,
)

_WRITE = "intercloud_write"
_RC = "READ COMMITTED"


def _autocommits(conn: Connection) -> bool:
    """Whether one statement on ``conn`` may go in autocommit with the answers of a
    transaction: PostgreSQL at READ COMMITTED, where each statement has its own
    snapshot anyway."""
    return conn.dialect.name == "postgresql" and conn.default_isolation_level == _RC


@contextmanager
def _at_level(conn: Connection, pinned: bool, level: str | None) -> Iterator[None]:
    """``conn`` at isolation ``level`` for the block (None: as it is), then back to the
    server's default (a pinned one; a checked-out one is reset by the pool)."""
    if level is None:
        yield
        return
    conn.execution_options(isolation_level=level)
    try:
        yield
    finally:
        if pinned:
            conn.execution_options(isolation_level=conn.default_isolation_level)


def describe_url(url: URL) -> str:
    """A short, password-free name for the database, for messages."""
    if url.get_backend_name() == "sqlite":
        return f"database {url.database or ':memory:'}"
    return f"database {url.render_as_string(hide_password=True)}"


def one_line(exc: BaseException) -> str:
    """The driver's message as one line (psycopg's span several)."""
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split())
    return text if len(text) <= 300 else text[:297] + "..."


def _explain(message: str, busy_timeout_s: float) -> str:
    if "file is not a database" in message:
        return f"{message} (corrupt, or not an intercloud database; left untouched)"
    if "database is locked" in message:
        return f"{message} (another process held it longer than {busy_timeout_s:g} s)"
    return message


class Database:
    """An engine plus the transaction helpers every store method uses."""

    def __init__(
        self, url: URL, *, busy_timeout_s: float = 5.0, connect_timeout_s: int = 5
    ) -> None:
        self.url = url
        self.name = describe_url(url)
        self.busy_timeout_s = busy_timeout_s
        self.dialect = url.get_backend_name()
        self.engine = self._create_engine(url, connect_timeout_s)
        #: bumped after every write transaction of this object (``Store.coalesced_reads``)
        self.write_generation = 0
        self._generation_lock = threading.Lock()
        #: called after each committed write transaction, with its journal and the
        #: generations before and after it (``write_journal``; under a lock, in order)
        self.on_commit: list[Callable[[WriteJournal, int, int], None]] = []
        self._atomic = threading.local()  # ``atomic``: this thread's open write, if any
        self._pin = threading.local()  # ``pinned``: this thread's connection, if any

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def _create_engine(self, url: URL, connect_timeout_s: int) -> Engine:
        if self.dialect == "sqlite":
            memory = url.database in (None, "", ":memory:")
            kwargs: dict[str, Any] = {}
            # In memory: one shared connection (else every checkout sees an empty
            # database), so one thread at a time — for tests and quick scripts only.
            if memory:
                kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
            engine = sa.create_engine(url, **kwargs)
            busy_ms = int(self.busy_timeout_s * 1000)

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
                # Driver autocommit: SQLAlchemy's "begin" event below issues BEGIN itself.
                dbapi_conn.isolation_level = None
                cur = dbapi_conn.cursor()
                cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
                if not memory:
                    cur.execute("PRAGMA journal_mode = WAL")
                    # files made by an older intercloud or another tool: private now
                    db_file = Path(str(url.database))
                    make_private(db_file, *(Path(f"{db_file}{x}") for x in ("-wal", "-shm")))
                # FULL: WAL is fsynced at every commit, so an acknowledged commit survives
                # power loss too (NORMAL only survives a process crash).
                cur.execute("PRAGMA synchronous = FULL")
                cur.execute("PRAGMA foreign_keys = ON")
                cur.close()

            @event.listens_for(engine, "begin")
            def _on_begin(conn: Connection) -> None:
                write = conn.get_execution_options().get(_WRITE, False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

            track_writes(engine)
            return engine
        engine = sa.create_engine(
            url,
            pool_pre_ping=True,
            connect_args={"connect_timeout": connect_timeout_s},
        )
        from intercloud.store.pg_cursor import DescribedCursor  # (psycopg: PostgreSQL only)

        @event.listens_for(engine, "connect")
        def _on_pg_connect(dbapi_conn: Any, _record: object) -> None:
            dbapi_conn.cursor_factory = DescribedCursor

        track_writes(engine)
        return engine

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn driver failures (not constraint violations) into one-line StoreError."""
        try:
            yield
        except sa.exc.IntegrityError:
            raise
        except (sa.exc.DBAPIError, sqlite3.Error) as exc:
            msg = _explain(one_line(exc), self.busy_timeout_s)
            error = StoreLocked if "database is locked" in msg else StoreError
            raise error(f"{self.name}: {msg}") from exc

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """Inside the block, this thread's transactions (``read``, ``read_snapshot``,
        ``write``) share one connection, checked out (and, on PostgreSQL, pinged) once
        instead of once each: a loop step's two dozen short transactions. Each is still
        its own transaction. A transaction that fails on it drops it: the rest of the
        block checks out as outside. SQLite (a file: no ping, a cheap checkout) is left
        as it is. Nested blocks share the outer one's connection."""
        if self.is_sqlite or getattr(self._pin, "conn", None) is not None:
            yield
            return
        with self.errors():
            self._pin.conn = self.engine.connect()
        try:
            yield
        finally:
            self._unpin()

    def _unpin(self) -> None:
        conn = getattr(self._pin, "conn", None)
        self._pin.conn = None
        if conn is not None:
            with contextlib.suppress(Exception):  # (a broken one: the pool drops it)
                conn.close()

    @contextmanager
    def _connection(self) -> Iterator[tuple[Connection, bool]]:
        """A connection with no transaction open: the pinned one when there is one and
        it is free (a transaction inside another gets its own, as outside ``pinned``),
        else one checked out for the block. Second: whether it is the pinned one."""
        pin: Connection | None = getattr(self._pin, "conn", None)
        if pin is None or pin.closed or pin.invalidated or pin.in_transaction():
            with self.engine.connect() as conn:
                yield conn, False
            return
        try:
            yield pin, True
        except BaseException:
            self._unpin()
            raise

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A short read transaction. On PostgreSQL at READ COMMITTED (its default) each
        statement takes its own snapshot, inside a transaction or not, so the reads run
        in autocommit: the same answers without a BEGIN and a COMMIT round trip each
        (a loop step makes a dozen of these reads)."""
        with self.errors(), self._connection() as (conn, pinned):
            level = "AUTOCOMMIT" if _autocommits(conn) else None
            with _at_level(conn, pinned, level), conn.begin():
                yield conn

    @contextmanager
    def read_snapshot(self) -> Iterator[Connection]:
        """A short read transaction whose statements all see one snapshot (PostgreSQL:
        REPEATABLE READ; SQLite's read transactions already do)."""
        with self.errors(), self._connection() as (conn, pinned):
            level = "REPEATABLE READ" if conn.dialect.name == "postgresql" else None
            with _at_level(conn, pinned, level), conn.begin():
                yield conn

    @contextmanager
    def write(self, one_statement: bool = False) -> Iterator[Connection]:
        """A short write transaction, committed when the block exits normally (and
        durable then: the commit has returned), rolled back on any exception. Each one
        bumps ``write_generation`` once it has ended. Inside ``atomic`` on this thread:
        that block's transaction (committed when the block ends).

        ``one_statement``: the block sends at most one statement that writes (reads
        around it are fine). On PostgreSQL at READ COMMITTED that statement is its own
        transaction (autocommit: atomic and durable when it returns), without the BEGIN
        and COMMIT round trips; a second writing statement in the block is refused
        before it is sent (``write_journal``: a bug, never half a transaction)."""
        joined = getattr(self._atomic, "conn", None)
        if joined is not None:
            yield joined
            return
        journal: WriteJournal | None = None
        try:
            with self.errors(), self._connection() as (conn, pinned):
                single = one_statement and _autocommits(conn)
                conn.execution_options(**{_WRITE: True})
                journal = open_journal(conn, one_statement=single)
                try:
                    level = "AUTOCOMMIT" if single else None
                    with _at_level(conn, pinned, level), conn.begin():
                        yield conn
                finally:
                    close_journal(conn)
            committed = journal
        except BaseException:
            committed = None
            raise
        finally:
            self._ended(committed)

    def _ended(self, journal: WriteJournal | None) -> None:
        """A write transaction ended (``journal``: it committed, and what it wrote):
        the generation moves on, so a reader that saw the old number reads again,
        unless a hook (``on_commit``) carries what it keeps to the new one."""
        with self._generation_lock:
            before = self.write_generation
            self.write_generation = after = before + 1
            if journal is not None:
                for hook in self.on_commit:
                    hook(journal, before, after)

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Every ``write`` of this thread inside the block in one transaction: committed
        (durable) when the block exits normally, rolled back, all of it, on any
        exception. Nested blocks join the outer one."""
        if getattr(self._atomic, "conn", None) is not None:
            yield
            return
        with self.write() as conn:
            self._atomic.conn = conn
            try:
                yield
            finally:
                self._atomic.conn = None

    def dispose(self) -> None:
        self.engine.dispose()
