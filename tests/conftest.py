"""Shared fixtures.

``db_url``: every test that uses it runs on SQLite (a new file) and on a real PostgreSQL
(``postgresql+psycopg://postgres@127.0.0.1:5432/postgres`` with trust auth;
``INTERCLOUD_TEST_PG_URL`` overrides): one database per test session, migrated once and
emptied before each test, dropped at the end. When the server is unreachable the
PostgreSQL cases fail under ``CI=true`` and are skipped otherwise.

``shared_data``: the public data folder ``../shared/data`` beside the checkout. Tests that
need it fail when ``CI=true`` and it is missing (CI must have it) and skip otherwise (a
user's own clone has no ``../shared``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from intercloud.store import open_store
from intercloud.store.testing import (
    postgres_unavailable,
    reset_database,
    temporary_postgres_database,
)
from node_processes import leftovers_killed

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


_pg_reason: list[str | None] = []


@pytest.fixture()
def postgres_required() -> None:
    """Fail (CI) or skip (elsewhere) the requesting test when PostgreSQL is unreachable."""
    require_postgres()


def require_postgres() -> None:
    """Fail (CI) or skip (elsewhere) the calling test when PostgreSQL is unreachable."""
    if not _pg_reason:
        _pg_reason.append(postgres_unavailable())
    reason = _pg_reason[0]
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but PostgreSQL is unreachable: {reason}")
        pytest.skip(f"PostgreSQL unreachable: {reason}")


@pytest.fixture(scope="session")
def _pg_session_url() -> Iterator[str]:
    require_postgres()
    with temporary_postgres_database() as url:
        open_store(url).close()
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each backend (SQLite: a new file in tmp_path, not created
    yet; PostgreSQL: the session database, migrated and emptied)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    url: str = request.getfixturevalue("_pg_session_url")
    reset_database(url)
    return url


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """A local provider root; the test fails if any node process outlives it."""
    r = tmp_path / "local"
    yield r
    left = leftovers_killed(r)
    assert not left, f"processes left behind: {left}"
