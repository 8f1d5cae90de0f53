"""``Store.atomic``: the writes of a block in one transaction, all or none, durable
when it ends; a failed guard inside is no error (the other moves stand); nested
blocks join; readers see nothing of it before the commit."""

from __future__ import annotations

import pytest

from intercloud.control.states import JobState as S
from intercloud.store import Store


def _jobs(store: Store, n: int) -> list[int]:
    return [store.submit("training", f"j{i}", "run: x\n") for i in range(n)]


def test_the_block_commits_every_move_at_once(store: Store) -> None:
    a, b, c = _jobs(store, 3)
    stale = store.get(c).version
    store.set_fields(c, stale, reason="moved on")  # c's guard will fail
    generation = store._db.write_generation
    with store.atomic():
        assert store.transition(a, S.PENDING, S.PLACING, "x") is not None
        with store.atomic():  # nested: joins
            assert store.transition(b, S.PENDING, S.PLACING, "x") is not None
        assert store.transition(c, S.PENDING, S.PLACING, "x", expected_version=stale) is None
        store.begin_attempt(a, 1)
        # nothing is committed yet: a reader on another connection sees the old rows
        with store._db.read() as conn:
            assert store._get(conn, a).state is S.PENDING
        assert store._db.write_generation == generation
    assert store._db.write_generation == generation + 1  # one write, readers read again
    assert [store.get(j).state for j in (a, b, c)] == [S.PLACING, S.PLACING, S.PENDING]
    assert [x.attempt for x in store.attempts(a)] == [1]
    kinds = [(e.workload_id, e.to_state) for e in store.events() if e.kind == "transition"]
    assert (a, S.PLACING.value) in kinds and (b, S.PLACING.value) in kinds
    assert (c, S.PLACING.value) not in kinds


def test_an_exception_rolls_back_the_whole_block(store: Store) -> None:
    a, b = _jobs(store, 2)
    with pytest.raises(RuntimeError), store.atomic():
        store.transition(a, S.PENDING, S.PLACING, "x")
        store.begin_attempt(a, 1)
        store.transition(b, S.PENDING, S.PLACING, "x")
        raise RuntimeError("crash before the commit")
    assert [store.get(j).state for j in (a, b)] == [S.PENDING, S.PENDING]
    assert store.attempts(a) == []
    # the store goes on as before
    assert store.transition(a, S.PENDING, S.PLACING, "x") is not None
