"""Throw-away databases for tests and benchmarks (both backends).

Used by the test suite's fixtures (``tests/store/conftest.py``) and available to other
test folders and ``bench/``. Imports nothing from pytest.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import make_url

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
#: the tables whose rows the store's row images track (``row_deletions``' names)
TRACKED_TABLES = ("workloads", "instances", "nodes")


class FakeClock:
    """A clock moved by hand: ``clock()`` is the current time, ``tick(s)`` moves it on."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1.0) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


#: The PostgreSQL server tests use (trust auth); ``INTERCLOUD_TEST_PG_URL`` overrides.
DEFAULT_PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def pg_admin_url() -> str:
    return os.environ.get("INTERCLOUD_TEST_PG_URL") or DEFAULT_PG_ADMIN_URL


def postgres_unavailable(admin_url: str | None = None, timeout_s: int = 3) -> str | None:
    """None when the server answers, else a one-line reason."""
    engine = sa.create_engine(
        admin_url or pg_admin_url(), connect_args={"connect_timeout": timeout_s}
    )
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return None
    except sa.exc.DBAPIError as exc:
        return " ".join(str(exc.orig).split())
    finally:
        engine.dispose()


@contextmanager
def temporary_postgres_database(
    admin_url: str | None = None, prefix: str = "intercloud_test_"
) -> Iterator[str]:
    """Create an empty database ``<prefix><random>``, yield its URL, drop it after
    (``WITH (FORCE)``: connections still open are cut)."""
    admin = make_url(admin_url or pg_admin_url())
    name = f"{prefix}{secrets.token_hex(6)}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin.set(database=name).render_as_string(hide_password=False)
        finally:
            with engine.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def reset_database(url: str) -> None:
    """Empty every intercloud table of a migrated database and restore the seed rows
    (the ``default`` tenant), identities restarting at 1 — a fresh store in a few
    milliseconds, where creating a PostgreSQL database takes half a second."""
    from intercloud.store.tables import metadata

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            names = ", ".join(t.name for t in metadata.sorted_tables)
            if engine.dialect.name == "postgresql":
                conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                for table in reversed(metadata.sorted_tables):
                    conn.execute(table.delete())
                conn.execute(sa.text("DELETE FROM sqlite_sequence"))
            tenants = metadata.tables["tenants"]
            conn.execute(tenants.insert().values(name="default", created_at=datetime.now(UTC)))
            counter = metadata.tables["change_counter"]
            conn.execute(counter.insert().values(id=1, value=0))
            # fresh deletion stamps (migration 0010): a store still open on the database
            # reads everything again (the triggers may have left rows, or none)
            stamps = metadata.tables["row_deletions"]
            conn.execute(stamps.delete())
            fresh = [{"name": n, "stamp": str(uuid.uuid4())} for n in TRACKED_TABLES]
            conn.execute(stamps.insert(), fresh)
    finally:
        engine.dispose()
