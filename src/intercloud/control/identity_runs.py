"""What changed between two reads of a long list that are mostly the very same objects
in the same order (``same_runs``, ``identity_delta``).

The store's bulk reads hand back an unchanged row as the same record object, in the
same order (by id) as last time, and the control loop derives its per-step inputs from
them (the 6,000 jobs holding capacity, the 10,000 instances of the fleet snapshot). A
loop step in which a few rows changed need look only at those: these helpers find them
by comparing the two lists object by object in C (``map(operator.is_not, ...)``), so
a step costs a few passes at C speed instead of a Python pass over every row.

The walk is greedy: at a difference it looks a few places ahead in each list for the
object it is at in the other (rows inserted or removed), else counts both as changed
(a row replaced by its new record). An object it cannot pair is reported as removed
and, if it is still in the new list elsewhere, as added: the delta is always right,
only larger than it needs to be when rows moved.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from itertools import compress, count, islice
from typing import TypeVar

__all__ = ["identity_delta", "same_runs"]

T = TypeVar("T")

#: how far ahead a difference looks for the object it stands at in the other list
_LOOKAHEAD = 8


def same_runs(
    old: Sequence[T], new: Sequence[T], max_edits: int = 64
) -> list[tuple[int, int, int]] | None:
    """The runs of ``new`` that are the very objects of ``old`` in the same order, as
    (start in ``new``, length, start in ``old``), in order; the positions of ``new``
    outside them hold objects to look at, those of ``old`` outside them objects gone.
    None after more than ``max_edits`` differences (the caller looks at everything).

    One C-level pass per distinct offset between the lists: the differences at one
    offset come from one lazy ``compress`` over both lists; a replaced object keeps
    the offset (the same pass goes on), inserted or removed ones start a new pass."""
    runs: list[tuple[int, int, int]] = []
    i = j = edits = 0
    n_old, n_new = len(old), len(new)
    while i < n_old and j < n_new:
        off = i - j
        m = min(n_old - off, n_new)  # positions of ``new`` comparable at this offset
        pairs = map(operator.is_not, islice(old, i, m + off), islice(new, j, m))
        differ = compress(count(j), pairs)
        while True:
            d = next(differ, m)
            if d > j:
                runs.append((j, d - j, j + off))
            i, j = d + off, d
            if j >= m:
                break
            edits += 1
            if edits > max_edits:
                return None
            x, y = new[j], old[i]
            shift = 0
            for k in range(1, _LOOKAHEAD + 1):
                if i + k < n_old and old[i + k] is x:
                    shift = k  # ``k`` objects of ``old`` gone
                    break
                if j + k < n_new and new[j + k] is y:
                    shift = -k  # ``k`` objects new in ``new``
                    break
            if shift:
                i, j = (i + shift, j) if shift > 0 else (i, j - shift)
                break  # another offset: another pass
            i += 1  # one object replaced by another: ``differ`` goes on past it
            j += 1
    return runs


def identity_delta(
    old: Sequence[T], new: Sequence[T], max_edits: int = 64
) -> tuple[list[T], list[T]] | None:
    """(removed, added): the objects of ``old`` outside ``same_runs`` and those of
    ``new`` outside them, each in its list's order; None as ``same_runs``."""
    runs = same_runs(old, new, max_edits)
    if runs is None:
        return None
    removed: list[T] = []
    added: list[T] = []
    i = j = 0
    for start, k, at in runs:
        added.extend(new[j:start])
        removed.extend(old[i:at])
        j, i = start + k, at + k
    added.extend(new[j:])
    removed.extend(old[i:])
    return removed, added
