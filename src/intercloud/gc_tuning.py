"""Garbage collector settings for the long-running processes (the control loop, the
API server's workers)."""

from __future__ import annotations

import gc

#: Allocations between young collections (Python's default: 700).
GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Collect the young generation less often. A loop step or a request allocates many
    short-lived objects; at the default threshold some are still alive at each young
    collection and get promoted, so the full collections that walk every long-lived
    object (the loop's cached records and parsed specs: tens of thousands of jobs under
    a burst) came often: a quarter of the loop's CPU and ~6% of a server worker's in a
    submission burst (py-spy --native). Objects live no longer; only the collections'
    timing changes."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)
