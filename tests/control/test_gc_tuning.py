"""``tune_gc``: the long-running processes collect young objects less often and keep
Python's settings for the older generations."""

from __future__ import annotations

import gc

from intercloud.gc_tuning import GC_YOUNG_THRESHOLD, tune_gc


def test_only_the_young_threshold_moves() -> None:
    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 11, 12)
        tune_gc()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 11, 12)
        assert GC_YOUNG_THRESHOLD > 700
    finally:
        gc.set_threshold(*saved)
