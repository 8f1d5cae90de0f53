"""The store's hot write statements, built once per shape with bind parameters.

Building a DML statement from an ORM class on each call
(``sa.update(W).where(...).values(...)``) costs two to three times running it: every
value is coerced, the ORM's bulk-persistence bookkeeping runs, and the new statement's
cache key is computed afresh (about 0.3 ms of CPU each on a 2-core EPYC; a step of the
live loop in which one job ends and three start writes about sixty of them). A
statement built once, on the table, with ``bindparam`` placeholders keeps its memoized
cache key, so each call only binds parameters. The SQL is the same either way.

``prepared(key, build)`` keeps one statement per ``key`` (its shape: which columns are
set, which guards apply); the keys come from fixed sets of column names, so the memo
stays small.

Most guarded writes add one event row when they change their row. On PostgreSQL the two
go as one statement (``guarded_row(..., event=...)``: a data-modifying CTE, ``WITH u AS
(UPDATE ... RETURNING ...), e AS (INSERT INTO events ... SELECT ... FROM u) SELECT *
FROM u``), so the event is written exactly when the update matched, atomically, in one
round trip instead of two; a write transaction of that statement alone then needs no
BEGIN or COMMIT either (``Database.write(one_statement=True)``). SQLite, which has no
DML in CTEs, runs the two statements.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from enum import StrEnum
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from intercloud.store.tables import EventModel
from intercloud.store.write_journal import note_row

__all__ = [
    "EVENT_COLUMNS", "EVENT_FROM_ROW", "Then", "event_params", "guarded_row", "guarded_update",
    "insert_event", "prepared", "row_and_event", "set_param", "where_param",
]  # fmt: skip

S = TypeVar("S")
_STATEMENTS: dict[Hashable, Any] = {}


def prepared(key: Hashable, build: Callable[[], S]) -> S:
    """The statement kept under ``key``, made by ``build()`` on first use (thread-safe:
    two threads may both build it, and either result is the same statement)."""
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        stmt = _STATEMENTS[key] = build()
    return stmt


#: The columns of an event row; ``guarded_row``'s ``event`` gives each as ``e_<column>``.
EVENT_COLUMNS = ("workload_id", "instance_id", "time", "kind", "from_state", "to_state",
                 "reason", "data")  # fmt: skip
#: An event's ``e_workload_id`` taken from the row the update wrote (``workload_id``
#: of an instance row: the job it serves)
EVENT_FROM_ROW = "from the row"

_EVENTS = cast(sa.Table, EventModel.__table__)
#: One event row, its values as ``e_<column>`` parameters.
_INSERT_EVENT = sa.insert(_EVENTS).values({c: sa.bindparam(f"e_{c}") for c in EVENT_COLUMNS})


def event_params(
    workload_id: int | str | None,
    kind: str,
    time: Any,
    *,
    from_state: StrEnum | None = None,
    to_state: StrEnum | None = None,
    reason: str | None = None,
    data: Mapping[str, Any] | None = None,
    instance_id: int | None = None,
) -> dict[str, Any]:
    """The ``e_<column>`` parameters of one event row (``workload_id`` may be
    ``EVENT_FROM_ROW`` for ``guarded_row``)."""
    return {
        "e_workload_id": workload_id,
        "e_instance_id": instance_id,
        "e_time": time,
        "e_kind": kind,
        "e_from_state": from_state.value if from_state else None,
        "e_to_state": to_state.value if to_state else None,
        "e_reason": reason,
        "e_data": dict(data) if data is not None else None,
    }


def insert_event(conn: Connection, params: Mapping[str, Any]) -> int:
    """Insert one event row (``e_<column>`` parameters); its id."""
    pk = conn.execute(_INSERT_EVENT, params).inserted_primary_key
    assert pk is not None
    return int(pk[0])


#: A write that goes with a guarded write on PostgreSQL (``guarded_row``'s ``then``):
#: its key (its shape), a builder of the write from the guarded write's CTE ``u`` (it
#: must read ``u``, so that it writes only for the row the guarded write wrote), and
#: its own parameters (their names must not be columns of the guarded write's table:
#: SQLAlchemy would set those columns from them).
Then = tuple[Hashable, Callable[[Any], sa.Insert | sa.Update], Mapping[str, Any]]


def _with_event(
    dml: sa.Update | sa.Insert,
    from_row: bool,
    then: Callable[[Any], sa.Insert | sa.Update] | None = None,
) -> sa.Select[Any]:
    """``dml`` (with RETURNING) and an event row for each row it wrote, in one
    statement: ``WITH u AS (dml), e AS (INSERT INTO events SELECT ... FROM u)
    SELECT u.* FROM u`` (PostgreSQL runs every data-modifying CTE, read or not); with
    ``then``, its write from ``u`` as one more CTE."""
    u = dml.cte("u")
    values: list[Any] = [
        u.c.workload_id
        if c == "workload_id" and from_row
        else sa.bindparam(f"e_{c}", type_=_EVENTS.c[c].type)
        for c in EVENT_COLUMNS
    ]
    event = sa.insert(_EVENTS).from_select(list(EVENT_COLUMNS), sa.select(*values).select_from(u))
    out = sa.select(*u.c).add_cte(event.cte("e"))
    return out.add_cte(then(u).cte("t")) if then is not None else out


def set_param(column: str) -> str:
    """The bind parameter name of a SET value (a SET parameter may not be named as
    its column)."""
    return f"s_{column}"


def where_param(column: str) -> str:
    """The bind parameter name of a ``column = :value`` guard."""
    return f"w_{column}"


def guarded_update(
    table: sa.TableClause | sa.FromClause,
    set_columns: Iterable[str],
    where_columns: Iterable[str],
    *,
    also: Iterable[sa.ColumnElement[bool]] = (),
    computed: dict[str, sa.ColumnElement[Any]] | None = None,
    returning: Iterable[Any] = (),
) -> sa.Update:
    """``UPDATE table SET c = :s_c ... WHERE w = :w_w ... AND also`` (the ``computed``
    columns set to their expressions, such as ``version + 1``), ``RETURNING returning``."""
    c = table.c
    values: dict[str, Any] = {col: sa.bindparam(set_param(col)) for col in set_columns}
    values.update(computed or {})
    stmt = (
        sa.update(table)  # type: ignore[arg-type]
        .where(*(c[col] == sa.bindparam(where_param(col)) for col in where_columns), *also)
        .values(values)
    )
    cols = tuple(returning)
    return stmt.returning(*cols) if cols else stmt


def guarded_row(
    conn: Connection,
    kind: Hashable,
    values: Mapping[str, Any],
    guards: Mapping[str, Any],
    build: Callable[[tuple[str, ...], tuple[str, ...]], sa.Update],
    extra: Mapping[str, Any] | None = None,
    event: Mapping[str, Any] | None = None,
    then: Then | None = None,
) -> RowMapping | None:
    """Run the guarded UPDATE of one row that sets ``values`` where every ``guards``
    column matches (``build(set columns, guard columns)``, kept per ``kind`` and shape;
    ``extra``: parameters of its own); the row its RETURNING gives, or None when the
    guards matched nothing. The row is noted in the transaction's write journal
    (``write_journal``): a row image carries it instead of reading it back.

    ``event``: the ``e_<column>`` values of an event row written when (and only when)
    the update matched; ``e_workload_id`` may be ``EVENT_FROM_ROW``. On PostgreSQL the
    update and the event are one statement (module docstring). ``then`` (PostgreSQL
    only, with an event): one more write in that statement, made only when the update
    matched (``Then``)."""
    sets, where = tuple(sorted(values)), tuple(sorted(guards))
    params = {set_param(k): v for k, v in values.items()}
    params.update((where_param(k), v) for k, v in guards.items())
    if extra:
        params.update(extra)
    update = prepared((kind, sets, where), lambda: build(sets, where))
    return row_and_event(conn, (kind, sets, where), update, params, event, then)


def row_and_event(
    conn: Connection,
    key: Hashable,
    dml: sa.Update | sa.Insert,
    params: Mapping[str, Any],
    event: Mapping[str, Any] | None = None,
    then: Then | None = None,
) -> RowMapping | None:
    """Run ``dml`` (a one-row write with RETURNING, kept as ``prepared`` under ``key``)
    and, when it wrote its row, the ``event`` row (``guarded_row``; and ``then``'s
    write): one statement on PostgreSQL. The row, noted in the write journal, or None."""
    table = cast(sa.TableClause, dml.table).name
    from_row = event is not None and event.get("e_workload_id") is EVENT_FROM_ROW
    if then is not None and (event is None or conn.dialect.name != "postgresql"):
        raise ValueError("a write with the guarded one needs PostgreSQL and an event")
    if event is not None and conn.dialect.name == "postgresql":
        then_key, then_build, then_params = then if then is not None else (None, None, {})
        stmt = prepared(
            (key, "event", from_row, then_key), lambda: _with_event(dml, from_row, then_build)
        )
        both = dict(params)
        both.update(then_params)
        both.update((k, v) for k, v in event.items() if not (from_row and k == "e_workload_id"))
        row = conn.execute(stmt, both).mappings().one_or_none()
        note_row(conn, table, row)  # (row images carry it)
        return row
    row = conn.execute(dml, params).mappings().one_or_none()
    note_row(conn, table, row)
    if row is not None and event is not None:
        ev = dict(event)
        if from_row:
            ev["e_workload_id"] = row["workload_id"]
        insert_event(conn, ev)
    return row
