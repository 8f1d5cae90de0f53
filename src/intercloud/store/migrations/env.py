"""Alembic environment: runs migrations on the connection ``open_store`` passes in.

``open_store`` opens a connection, begins a transaction holding the write lock (SQLite
``BEGIN IMMEDIATE``, PostgreSQL an advisory lock), and hands the connection over in
``config.attributes["connection"]``; the migrations run inside that transaction, so a
schema upgrade is all or nothing on both backends. There is no offline (``--sql``) mode.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from intercloud.store.tables import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("intercloud migrations run through intercloud.store.open_store only")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things: future revisions use batch mode
    transactional_ddl=True,  # SQLite and PostgreSQL both roll DDL back
)
with context.begin_transaction():
    context.run_migrations()
