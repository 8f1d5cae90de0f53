"""Shared fixtures.

``shared_data``: the public data folder ``../shared/data`` beside the checkout. Tests that
need it fail when ``CI=true`` and it is missing (CI must have it) and skip otherwise (a
user's own clone has no ``../shared``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_CANDIDATES = [
    Path(p)
    for p in (
        os.environ.get("INTERCLOUD_SHARED_DATA"),
        REPO.parent / "shared" / "data",
        "/work/shared/data",
    )
    if p
]
SHARED_DATA = next((p for p in _CANDIDATES if p.is_dir()), _CANDIDATES[0])


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the shared data folder {SHARED_DATA} is missing")
        pytest.skip(f"shared data folder {SHARED_DATA} not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def skypilot_subset(shared_data: Path) -> Path:
    path = shared_data / "skypilot-catalog-v8-subset"
    if not path.is_dir():
        pytest.fail(f"{path} is missing from the shared data folder")
    return path
