"""Decoded records reused across bulk reads while their row is unchanged.

The control loop reads every live instance and every active workload several times a
step (10,000 instances at fleet scale); decoding each row again (its JSON columns
above all) was most of a step's time. ``RowCache.read`` runs a light query first, the
id and the columns that say whether a row changed, and fetches and decodes only the rows
whose key differs from the cached record's, so an unchanged row costs one small tuple.

Contract: a row's key columns (``version`` first, plus any column a writer may change
without bumping it) change whenever anything the record holds changes. Results match
what one full query would return at the moment of the light query, or later for rows
changed in between (each row read in a statement of its own transaction snapshot).
Thread-safe: entries are replaced whole, and each read resolves its rows once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

__all__ = ["RowCache"]

R = TypeVar("R")

#: Ids fetched per full query (below SQLite's oldest limit of 999 bound parameters).
_CHUNK = 900


class RowCache(Generic[R]):
    """Records of one table by id (module docstring). ``key_of(record)`` is the tuple of
    key columns as the light query returns them; ``decode`` makes a record of a full row.
    ``max_rows``: past this many entries the cache starts over (rows of ended work)."""

    def __init__(
        self,
        decode: Callable[[RowMapping], R],
        key_of: Callable[[R], tuple[Any, ...]],
        *,
        max_rows: int = 200_000,
    ) -> None:
        self._decode = decode
        self._key_of = key_of
        self._max_rows = max_rows
        self._by_id: dict[int, tuple[tuple[Any, ...], R]] = {}  # id -> (key, record)

    def read(
        self,
        conn: Connection,
        light: sa.Executable,
        full: Callable[[Sequence[int]], sa.Executable],
    ) -> list[R]:
        """The records of the rows ``light`` selects, in its order. ``light`` selects the
        id then the key columns; ``full(ids)`` selects the whole rows of ``ids``."""
        rows = conn.execute(light).all()
        by_id = self._by_id
        key_of = self._key_of
        got: dict[int, R] = {}
        need: list[int] = []
        for row in rows:
            ident = row[0]
            hit = by_id.get(ident)
            if hit is not None and hit[0] == tuple(row[1:]):
                got[ident] = hit[1]
            else:
                need.append(ident)
        fresh: dict[int, tuple[tuple[Any, ...], R]] = {}
        for i in range(0, len(need), _CHUNK):
            for r in conn.execute(full(need[i : i + _CHUNK])).mappings():
                rec = self._decode(r)
                fresh[r["id"]] = (key_of(rec), rec)
                got[r["id"]] = rec
        if fresh:
            if len(by_id) + len(fresh) > self._max_rows:
                by_id.clear()
            by_id.update(fresh)
        # a row deleted between the two queries is left out
        return [got[row[0]] for row in rows if row[0] in got]
