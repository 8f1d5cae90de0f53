"""A psycopg cursor that describes the columns of a statement's result once.

SQLAlchemy reads ``cursor.description`` after every statement that returns rows, and
psycopg builds it afresh each time: one ``Column`` per result column, each reading the
result's name, type, modifier and size through the driver and decoding the name. For
the store's hot one-row writes (``UPDATE ... RETURNING`` thirty columns) that was a
quarter of the time SQLAlchemy and psycopg spent on a statement, more than the round
trip to the server.

The names of a result's columns are a function of the statement's text and their types
nearly so (the tables' types do not change while a process runs: the schema is brought
to its revision when the store opens, ``engine.ensure_schema``), so ``DescribedCursor`` keeps the
description per connection and statement text (and result, for a text of several
statements) and hands back the same ``Column`` objects (immutable values) for every
later result of the same text whose column types are the same (a parameter's type can
set a column's: ``SELECT %s``). A statement whose text psycopg did not keep as a
string (a ``sql.Composed``) is described as psycopg does.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import TupleRow

__all__ = ["MAX_STATEMENTS", "DescribedCursor"]

#: statement texts whose description one connection keeps, the most recently described
#: (the store's repeated statements are a few hundred; a row image's read inlines its
#: low mark, so each of its texts is new and soon makes room)
MAX_STATEMENTS = 1024


class DescribedCursor(psycopg.Cursor[TupleRow]):
    """``psycopg.Cursor`` whose ``description`` is kept per statement text (module
    docstring); install with ``connection.cursor_factory = DescribedCursor``."""

    __slots__ = ()

    @property
    def description(self) -> list[psycopg.Column] | None:
        res = self.pgresult
        query = self._last_query  # (``_query`` is not kept for a prepared statement)
        if res is None or not isinstance(query, str | bytes) or not res.nfields:
            return super().description
        conn: Any = self._conn
        kept: dict[tuple[str | bytes, int], tuple[tuple[int, ...], list[psycopg.Column]]]
        kept = conn.__dict__.get("_intercloud_described")
        if kept is None:
            kept = conn.__dict__["_intercloud_described"] = {}
        key = (query, self._iresult)  # (a text of several statements has several results)
        # the types of a result may still follow its parameters' (``SELECT %s``)
        types = tuple(map(res.ftype, range(res.nfields)))
        hit = kept.pop(key, None)
        if hit is None or hit[0] != types:
            cols = super().description
            if cols is None:
                return None
            hit = (types, cols)
            if len(kept) >= MAX_STATEMENTS:  # the least recently described goes
                del kept[next(iter(kept))]
        kept[key] = hit  # (last: the most recently described)
        # a copy: a caller may change the list it gets, as psycopg's own is new each time
        return list(hit[1])
