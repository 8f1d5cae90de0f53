"""What one write transaction changed in the tables the row images keep.

A loop step interleaves reads of the live instances, workloads and nodes with writes.
Each write bumped ``Database.write_generation``, and the next read of every image went
back to the database (a read transaction of two or three statements), even when the
write only added events, or when it changed rows whose new values the write itself got
back by RETURNING.

A ``WriteJournal`` lives for one write transaction. Every statement sent in it counts,
per table it writes (``INSERT INTO t``, ``UPDATE t``, ``DELETE FROM t``, read off the
SQL text, so a raw or CTE statement counts too), and the store's guarded one-row writes
(``prepared.guarded_row``, the node claim) add the row they wrote. After the commit,
the image of a table is carried to the new generation (``RowImage.carry``) only when
the transaction did not write the table, or when every statement that wrote it gave
back its row (``rows_of``); any other write to it (a bulk update, a statement whose
table the text does not show, a write outside these helpers) leaves the image to read
the database again. So the journal can only spare a read, never hide a write.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, RowMapping

__all__ = [
    "SecondWrite", "WriteJournal", "check_statement", "close_journal", "note_row",
    "note_rows", "note_statement", "open_journal", "track_writes",
]  # fmt: skip

_KEY = "intercloud_write_journal"
#: the table after each DML keyword; a statement of none is a read
_DML = re.compile(
    r"\b(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?)"
    r'\s+"?(\w+)"?(\.?)',
    re.I,
)
#: DML whose table the text does not show (``UPDATE ONLY t``, ``schema.t``)
_ANY = "*"


class WriteJournal:
    """Per table: statements that wrote it, and those of them that reported their row."""

    __slots__ = ("one_statement", "reported", "rows", "statements", "written")

    def __init__(self, one_statement: bool = False) -> None:
        #: the transaction is one writing statement in autocommit (``Database.write``)
        self.one_statement = one_statement
        self.statements = 0  # statements that wrote something
        self.written: Counter[str] = Counter()
        self.reported: Counter[str] = Counter()
        self.rows: dict[str, list[RowMapping]] = {}

    def rows_of(self, table: str) -> list[RowMapping] | None:
        """The rows the transaction wrote to ``table``, in order ([]: it wrote none),
        or None when some write to it did not report its row (or wrote some table the
        SQL did not name)."""
        if self.written[_ANY] or self.written[table] != self.reported[table]:
            return None
        return self.rows.get(table, [])


def open_journal(conn: Connection, one_statement: bool = False) -> WriteJournal:
    """A journal for the write transaction about to begin on ``conn``."""
    journal = conn.info[_KEY] = WriteJournal(one_statement)
    return journal


def close_journal(conn: Connection) -> None:
    """The transaction on ``conn`` ended: its statements are not counted any more."""
    conn.info.pop(_KEY, None)


def note_statement(conn: Connection, statement: str) -> None:
    """Count the tables ``statement`` writes (an engine's ``after_cursor_execute``)."""
    journal = conn.info.get(_KEY)
    if journal is None:
        return
    tables = _written_by(statement)
    for name in tables:
        journal.written[name] += 1
    journal.statements += bool(tables)


#: the tables each statement text writes (``_written_by``); the store sends a few dozen
#: texts over and over, some of them long CTEs
_WRITTEN_BY: dict[str, tuple[str, ...]] = {}
_WRITTEN_BY_MAX = 512  # (the hot texts are a few dozen; image reads inline their mark)


def _written_by(statement: str) -> tuple[str, ...]:
    """The tables ``statement`` writes, one per DML keyword (``_ANY`` for one the text
    does not show), read off the text once per text."""
    tables = _WRITTEN_BY.get(statement)
    if tables is None:
        tables = tuple(
            _ANY if m.group(2) or m.group(1).lower() == "only" else m.group(1).lower()
            for m in _DML.finditer(statement)
        )
        if len(_WRITTEN_BY) >= _WRITTEN_BY_MAX:
            _WRITTEN_BY.clear()  # (texts with inlined values: start over)
        _WRITTEN_BY[statement] = tables
    return tables


class SecondWrite(RuntimeError):
    """A one-statement write (``Database.write(one_statement=True)``) tried a second
    writing statement: in autocommit it would not be atomic with the first."""


def check_statement(conn: Connection, statement: str) -> None:
    """Refuse a second writing statement in a one-statement write, before it is sent
    (an engine's ``before_cursor_execute``)."""
    journal = conn.info.get(_KEY)
    if (
        journal is not None
        and journal.one_statement
        and journal.statements
        and _written_by(statement)
    ):
        raise SecondWrite(f"a second writing statement in a one-statement write: {statement[:80]}")


def note_row(conn: Connection, table: str, row: RowMapping | None) -> None:
    """The one statement just run on ``conn`` wrote ``row`` to ``table`` (None: it
    matched no row)."""
    note_rows(conn, table, [] if row is None else [row])


def note_rows(conn: Connection, table: str, rows: list[RowMapping]) -> None:
    """The one statement just run on ``conn`` wrote ``rows`` to ``table`` (all of them:
    an UPDATE ... RETURNING of several rows)."""
    journal = conn.info.get(_KEY)
    if journal is None:
        return
    journal.reported[table] += 1
    if rows:
        journal.rows.setdefault(table, []).extend(rows)


def track_writes(engine: Engine) -> None:
    """Count every statement ``engine`` sends inside a journaled transaction."""
    event.listen(engine, "before_cursor_execute", _before_execute)
    event.listen(engine, "after_cursor_execute", _after_execute)


def _before_execute(conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
    check_statement(conn, statement)


def _after_execute(conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
    note_statement(conn, statement)
