"""Where the database is, and opening it (creating or upgrading the schema on the way).

- ``INTERCLOUD_DB_URL`` selects a database explicitly (PostgreSQL:
  ``postgresql://user@host:5432/db``; the psycopg 3 driver is filled in);
- otherwise SQLite in WAL mode at ``$INTERCLOUD_HOME/state.db`` (default home
  ``~/.intercloud``), created on first use.

``open_store`` is on the CLI's hot path: when the stored schema revision already equals
``HEAD_REVISION`` it neither imports nor runs Alembic.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url

from intercloud.store.db import Database, describe_url, one_line
from intercloud.store.errors import StoreError, StoreLocked
from intercloud.store.private import create_private_file, private_mkdir
from intercloud.store.repository import Store

#: The newest revision in ``migrations/versions`` (a test keeps the two equal).
HEAD_REVISION = "0010"
DEFAULT_HOME = Path("~/.intercloud")
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any constant: serialises concurrent schema upgrades on one PostgreSQL database.
_PG_MIGRATION_LOCK = 0x1C10D5


def intercloud_home() -> Path:
    """``$INTERCLOUD_HOME`` or ``~/.intercloud``, expanded (not created); read as every
    setting is (``settings.home``: a blank value is the default, as for the CLI)."""
    from intercloud.settings import home

    return home()


def database_url(home: Path | None = None) -> str:
    """The database to use: ``INTERCLOUD_DB_URL`` when set (it wins over ``home``),
    else ``sqlite:///<home>/state.db`` with ``home`` defaulting to ``intercloud_home()``."""
    from intercloud.settings import db_url

    env = db_url()  # validated: durable, its folder exists (SettingError otherwise)
    if env:
        return env
    home = (home or intercloud_home()).expanduser()
    return f"sqlite:///{home.absolute() / 'state.db'}"


def normalize_url(url: str) -> str:
    """Fill in the driver: ``postgres://`` and ``postgresql://`` → ``postgresql+psycopg://``.
    Raise StoreError (one line) for a URL that cannot be parsed or a backend other than
    SQLite and PostgreSQL."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise StoreError(f"invalid database URL {url!r}: {one_line(exc)}") from None
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise StoreError(f"unsupported {describe_url(parsed)}: use sqlite:/// or postgresql://")
    return parsed.render_as_string(hide_password=False)


def open_store(
    url: str | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    busy_timeout_s: float = 5.0,
    connect_timeout_s: int = 5,
) -> Store:
    """Open (creating if needed) the database at ``url`` (default: ``database_url()``)
    and bring its schema to ``HEAD_REVISION``.

    Creates the SQLite file's directory when missing. Raises StoreError with one line
    when the directory cannot be created, the file is corrupt or locked beyond
    ``busy_timeout_s``, the server is unreachable within ``connect_timeout_s``, or the
    schema is newer than this intercloud. Never deletes, moves or rewrites existing data:
    a failed upgrade rolls back as a whole.
    """
    parsed = make_url(normalize_url(url or database_url()))
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(str(parsed.database)).expanduser().absolute()
        _prepare_sqlite_path(path)
        parsed = parsed.set(database=str(path))
    db = Database(parsed, busy_timeout_s=busy_timeout_s, connect_timeout_s=connect_timeout_s)
    try:
        ensure_schema(db)
    except BaseException:
        db.dispose()
        raise
    return Store(db, clock=clock)


def _prepare_sqlite_path(path: Path) -> None:
    parent = path.parent
    try:
        private_mkdir(parent)
    except OSError as exc:
        raise StoreError(f"cannot create directory {parent}: {exc.strerror or exc}") from None
    if path.exists() and not path.is_file():
        raise StoreError(f"database {path}: exists but is not a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        # SQLite needs to create -wal/-shm files beside the database.
        raise StoreError(f"database {path}: directory {parent} is not writable")
    try:  # 0600 from birth: SQLite gives its -wal and -shm files the database's mode
        create_private_file(path)
    except OSError as exc:
        raise StoreError(f"cannot create database {path}: {exc.strerror or exc}") from None


def stored_revision(conn: Connection) -> str | None:
    """The Alembic revision recorded in the database, None for an empty database."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def ensure_schema(db: Database, migration_wait_s: float = 60.0) -> None:
    """Upgrade the schema to HEAD_REVISION, in one transaction that holds the write lock
    (concurrent openers wait, then find it done). Fast path: one read when current.

    A first open of a new SQLite file may find another opener mid-migration (it holds
    the lock while Alembic runs, which can outlast the busy timeout on a loaded machine):
    lock errors are retried for up to ``migration_wait_s``.
    """
    deadline = time.monotonic() + migration_wait_s
    while True:
        try:
            _ensure_schema_once(db)
            return
        except StoreLocked:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _ensure_schema_once(db: Database) -> None:
    with db.read() as conn:
        current = stored_revision(conn)
    if current == HEAD_REVISION:
        return
    _check_known(db, current)
    with db.write() as conn:
        if not db.is_sqlite:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_MIGRATION_LOCK)))
        current = stored_revision(conn)
        if current == HEAD_REVISION:
            return
        _check_known(db, current)
        if current is None and (foreign := sa.inspect(conn).get_table_names()):
            raise StoreError(
                f"{db.name}: not an intercloud database (has table {sorted(foreign)[0]!r} "
                "but no intercloud schema); refusing to change it"
            )
        _run_alembic_upgrade(conn)


def _check_known(db: Database, revision: str | None) -> None:
    if revision is not None and revision not in _known_revisions():
        raise StoreError(
            f"{db.name}: schema revision {revision!r} is unknown to this intercloud "
            f"(newest known {HEAD_REVISION!r}); upgrade intercloud"
        )


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    return {rev.revision for rev in script.walk_revisions()}


def alembic_head() -> str:
    """The head revision as Alembic sees the migration scripts (tests compare it)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert head is not None
    return head


def _run_alembic_upgrade(conn: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


def database_name(url: str) -> str:
    """The password-free name of the database ``url`` designates, as ``Store.name`` spells
    it for the same database (SQLite paths made absolute): two URLs of one database give
    the same name. Raises StoreError for an unusable URL."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        parsed = parsed.set(database=str(Path(str(parsed.database)).expanduser().absolute()))
    return describe_url(parsed)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite ``url`` (absolute), None for other databases or in memory."""
    parsed = make_url(normalize_url(url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database)).expanduser().absolute()


__all__ = [
    "DEFAULT_HOME",
    "HEAD_REVISION",
    "alembic_head",
    "database_name",
    "database_url",
    "ensure_schema",
    "intercloud_home",
    "normalize_url",
    "open_store",
    "sqlite_file",
    "stored_revision",
]
