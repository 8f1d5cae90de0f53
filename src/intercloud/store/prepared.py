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
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from intercloud.store.write_journal import note_row

__all__ = ["guarded_row", "guarded_update", "prepared", "set_param", "where_param"]

S = TypeVar("S")
_STATEMENTS: dict[Hashable, Any] = {}


def prepared(key: Hashable, build: Callable[[], S]) -> S:
    """The statement kept under ``key``, made by ``build()`` on first use (thread-safe:
    two threads may both build it, and either result is the same statement)."""
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        stmt = _STATEMENTS[key] = build()
    return stmt


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
) -> RowMapping | None:
    """Run the guarded UPDATE of one row that sets ``values`` where every ``guards``
    column matches (``build(set columns, guard columns)``, kept per ``kind`` and shape;
    ``extra``: parameters of its own); the row its RETURNING gives, or None when the
    guards matched nothing. The row is noted in the transaction's write journal
    (``write_journal``): a row image carries it instead of reading it back."""
    sets, where = tuple(sorted(values)), tuple(sorted(guards))
    stmt = prepared((kind, sets, where), lambda: build(sets, where))
    params = {set_param(k): v for k, v in values.items()}
    params.update((where_param(k), v) for k, v in guards.items())
    if extra:
        params.update(extra)
    row = conn.execute(stmt, params).mappings().one_or_none()
    note_row(conn, cast(sa.TableClause, stmt.table).name, row)  # (row images carry it)
    return row
