"""``identity_runs``: after any edits of a list of objects (some replaced by new objects,
some removed, some inserted, some moved), the delta names every object that is new
and every one that is gone, by identity; the runs pair only the very same objects; too
many edits answer None."""

from __future__ import annotations

import random

import pytest

from intercloud.control.identity_runs import identity_delta, same_runs


class Obj:
    def __init__(self, k: int) -> None:
        self.k = k

    def __eq__(self, other: object) -> bool:  # equal values must not pass for the same
        return isinstance(other, Obj) and other.k == self.k

    __hash__ = None  # type: ignore[assignment]


def _edit(rng: random.Random, old: list[Obj], edits: int) -> list[Obj]:
    new = list(old)
    for _ in range(edits):
        op = rng.choice(("replace", "remove", "insert", "move"))
        if op == "insert" or not new:
            new.insert(rng.randrange(len(new) + 1), Obj(rng.randrange(100)))
        elif op == "replace":
            at = rng.randrange(len(new))
            new[at] = Obj(new[at].k)  # an equal value, another object: changed
        elif op == "remove":
            del new[rng.randrange(len(new))]
        else:
            x = new.pop(rng.randrange(len(new)))
            new.insert(rng.randrange(len(new) + 1), x)
    return new


@pytest.mark.parametrize("seed", range(200))
def test_the_delta_names_every_object_new_and_gone(seed: int) -> None:
    rng = random.Random(seed)
    old = [Obj(i) for i in range(rng.choice((0, 1, 5, 50, 400)))]
    new = _edit(rng, old, rng.choice((0, 1, 2, 5, 20)))
    got = identity_delta(old, new, max_edits=1000)
    assert got is not None
    removed, added = got
    old_ids, new_ids = {id(x) for x in old}, {id(x) for x in new}
    assert {id(x) for x in new if id(x) not in old_ids} <= {id(x) for x in added}
    assert {id(x) for x in old if id(x) not in new_ids} <= {id(x) for x in removed}
    # what is left out on both sides pairs up, position by position, as the same objects
    runs = same_runs(old, new, max_edits=1000)
    assert runs is not None
    for start, k, at in runs:
        assert k > 0 and all(new[start + d] is old[at + d] for d in range(k))
    covered = sum(k for _, k, _ in runs)
    assert len(added) == len(new) - covered and len(removed) == len(old) - covered


def test_one_changed_row_is_the_whole_delta() -> None:
    old = [Obj(i) for i in range(10_000)]
    new = list(old)
    gone = new.pop(300)
    new[5000] = fresh = Obj(5001)
    new.insert(9000, extra := Obj(-1))
    assert identity_delta(old, new) == ([gone, old[5001]], [fresh, extra])


def test_too_many_edits_answer_none() -> None:
    old = [Obj(i) for i in range(100)]
    new = [Obj(i) for i in range(100)]  # every object replaced
    assert identity_delta(old, new, max_edits=10) is None
    assert identity_delta(old, list(old), max_edits=0) == ([], [])
