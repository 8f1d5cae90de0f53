"""Types of the compiled part of the scheduler's queue walk (``_walkc.c``; optional)."""

from typing import Any

def fast_holds(
    order: list[int],
    queue: list[object],
    jobs: dict[int, object],
    fast: dict[int, tuple[int, str, tuple[int, ...]]],
    mut: int,
    allocations: dict[int, object],
    out: list[object],
    start: int,
) -> int: ...
def plan_counts(
    order: list[int],
    queue: list[object],
    jobs: dict[int, object],
    same: dict[int, object],
    classes: dict[object, object],
    keys: dict[int, object],
    start: int,
) -> int: ...
def rows_by_id(items: list[Any], rows: dict[int, int], out: object) -> None: ...
