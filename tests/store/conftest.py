"""Store fixtures: every store test runs against SQLite and a real PostgreSQL.

PostgreSQL: ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres`` (trust auth;
``INTERCLOUD_TEST_PG_URL`` overrides). The test session creates one database, migrated
once and emptied before each test (``db_url``); tests of schema creation get a brand-new
empty database of their own (``empty_db_url``). Every database is dropped afterwards.
When the server is unreachable the PostgreSQL cases fail under ``CI=true`` and are
skipped otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from intercloud.store import Store, open_store
from intercloud.store.testing import (
    FakeClock,
    temporary_postgres_database,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A brand-new empty database of each backend (no schema at all)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    request.getfixturevalue("postgres_required")
    with temporary_postgres_database() as url:
        yield url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(db_url: str, clock: FakeClock) -> Iterator[Store]:
    s = open_store(db_url, clock=clock)
    try:
        yield s
    finally:
        s.close()
