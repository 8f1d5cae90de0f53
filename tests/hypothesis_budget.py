"""Example counts for the slowest property tests: lean by default, so the whole suite
fits CI's budget on 2 cores; ``INTERCLOUD_THOROUGH_PROPERTIES=1`` restores the full
counts (run it after touching the scheduler core or the tenant ledger)."""

from __future__ import annotations

import os

THOROUGH = os.environ.get("INTERCLOUD_THOROUGH_PROPERTIES", "") not in ("", "0")


def examples(full: int) -> int:
    """``full`` when thorough, else a quarter of it (never fewer than 25 nor ``full``)."""
    return full if THOROUGH else max(full // 4, min(full, 25))
