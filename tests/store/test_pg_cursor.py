"""``DescribedCursor``: a result's description is kept per statement text, and what it
hands back is always what psycopg itself describes: for the same text with parameters
of other types, for each result of a text of several statements, after the kept
descriptions make room, and for the store's own engine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from intercloud.store import open_store, pg_cursor
from intercloud.store.pg_cursor import DescribedCursor
from intercloud.store.testing import temporary_postgres_database


@pytest.fixture()
def conns(postgres_required: None) -> Iterator[tuple[Any, Any]]:
    """Two connections to a new database: one with the kept descriptions, one plain."""
    with temporary_postgres_database() as url:
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        with (
            psycopg.connect(dsn, autocommit=True) as kept,
            psycopg.connect(dsn, autocommit=True) as plain,
        ):
            kept.cursor_factory = DescribedCursor
            yield kept, plain


def _described(conn: Any, query: str, params: Any = None) -> list[list[tuple[Any, ...]]]:
    """Each result's description of ``query``, as plain tuples (name, type, ...)."""
    cur = conn.cursor()
    cur.execute(query, params)
    out = []
    while True:
        d = cur.description
        out.append([(*tuple(c), c.type_display) for c in d] if d is not None else [])
        if not cur.nextset():
            return out


CASES: list[tuple[str, Any]] = [
    ("SELECT %s AS x, 2 AS y", (1,)),
    ("SELECT %s AS x, 2 AS y", ("text",)),  # same text: x is now text
    ("SELECT %s AS x, 2 AS y", (1.5,)),
    ("SELECT %s AS x, 2 AS y", (1,)),
    ("SELECT 1 AS a; SELECT 'b'::varchar(7) AS a, 2.5::numeric(4,2) AS c", None),
    ("SELECT 1 AS a; SELECT 'b'::varchar(7) AS a, 2.5::numeric(4,2) AS c", None),
    ("SELECT 1 AS a; SELECT 2 AS b", None),  # same types, other names
    ("CREATE TABLE t (a int, b text)", None),
    ("INSERT INTO t VALUES (1, 'x') RETURNING *", None),
    ("UPDATE t SET a = a + 1 RETURNING b, a", None),
]


def test_descriptions_are_psycopgs_own(conns: tuple[Any, Any]) -> None:
    got: list[list[Any]] = [[], []]
    for c, out in zip(conns, got, strict=True):
        for _ in range(7):  # past psycopg's prepare threshold (5): prepared statements too
            for query, params in CASES:
                if query.startswith("CREATE"):
                    c.execute("DROP TABLE IF EXISTS t")
                out.append((query, params, _described(c, query, params)))
    assert got[0] == got[1]


def test_a_statement_is_described_once(conns: tuple[Any, Any], monkeypatch: Any) -> None:
    kept, _ = conns
    made: list[int] = []
    real = psycopg.Cursor.description

    def counted(self: psycopg.Cursor[Any]) -> Any:
        made.append(1)
        return real.fget(self)  # type: ignore[attr-defined]

    monkeypatch.setattr(psycopg.Cursor, "description", property(counted))
    for i in range(20):
        assert _described(kept, "SELECT %s AS x, now() AS t", (i,))[0][0][0] == "x"
    assert len(made) == 1


def test_room_is_made_for_new_texts(conns: tuple[Any, Any], monkeypatch: Any) -> None:
    kept, plain = conns
    monkeypatch.setattr(pg_cursor, "MAX_STATEMENTS", 3)
    for i in range(10):
        query = f"SELECT {i} AS n{i}, %s AS v"
        assert _described(kept, query, ("a",)) == _described(plain, query, ("a",))
        assert len(kept.__dict__["_intercloud_described"]) <= 3
    # the most recently described stay
    assert [k[0] for k in kept.__dict__["_intercloud_described"]][-1].startswith("SELECT 9")


def test_the_store_engine_uses_it(postgres_required: None) -> None:
    with temporary_postgres_database() as url:
        store = open_store(url)
        try:
            with store._db.read() as conn:
                raw = conn.connection.driver_connection
                assert raw is not None and raw.cursor_factory is DescribedCursor
        finally:
            store.close()
