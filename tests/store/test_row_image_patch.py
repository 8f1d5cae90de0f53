"""The row image patches its sorted list, kept filters and groupings with a read's
changed rows (``RowImage._changed``) instead of sorting again: after any sequence of
inserts, updates, moves out of the tracked states and back, the list, every filter
and every grouping equal what a full sort of the image's rows gives, ties of the order
key included (those go to the full sort)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from intercloud.store.row_image import RowImage

META = sa.MetaData()
T = sa.Table(
    "t",
    META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("state", sa.String),
    sa.Column("k", sa.Integer),
    sa.Column("change_seq", sa.Integer),
)
COUNTER = sa.Table(
    "change_counter",
    META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("value", sa.Integer),
)


@dataclass(frozen=True)
class Rec:
    id: int
    state: str
    k: int


def _decode(row: Any) -> Rec:
    return Rec(row["id"], row["state"], row["k"])


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_patched_rows_and_filters_equal_a_full_sort(seed: int, ties: bool) -> None:
    rng = random.Random(seed)
    engine = sa.create_engine("sqlite://")
    META.create_all(engine)
    with engine.begin() as conn:
        conn.execute(COUNTER.insert().values(id=1, value=0))

    def order(r: Rec) -> Any:
        return r.k if ties else (r.k, r.id)

    image: RowImage[Rec] = RowImage(T, sa.select(T), _decode, ["a", "b"], order)
    tests = {"a": lambda r: r.state == "a", "even": lambda r: r.k % 2 == 0}
    ids: list[int] = []
    seq = 0
    for step in range(60):
        with engine.begin() as conn:
            for _ in range(rng.choice((1, 1, 2, 5, 300))):
                seq += 1
                conn.execute(COUNTER.update().values(value=seq))
                k = rng.randrange(10_000 if not ties else 40)
                state = rng.choice("aabbc")  # c: out of the tracked states
                if ids and rng.random() < 0.7:
                    conn.execute(
                        T.update()
                        .where(T.c.id == rng.choice(ids))
                        .values(state=state, k=k, change_seq=seq)
                    )
                else:
                    ids.append(len(ids) + 1)
                    conn.execute(T.insert().values(id=ids[-1], state=state, k=k, change_seq=seq))
        with engine.connect() as conn:
            got = image.rows(conn)
        full = sorted((rec for _, rec in image._by_id.values()), key=order)
        assert got == full, f"seed {seed}, step {step}"
        assert {r.id for r in got} == set(_fresh(engine))
        for name, test in tests.items():
            assert image.filtered(name, test) == [r for r in full if test(r)], name
        for g in range(8):
            got = image.group("by k", lambda r: r.k % 7 or None, g)
            assert got == [r for r in full if r.k % 7 and r.k % 7 == g], g


def _fresh(engine: sa.Engine) -> list[int]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.select(T.c.id).where(T.c.state.in_(["a", "b"])))]
