"""Initial schema: tenants (with ``default``), workloads, attempts, nodes, events, settings.

Revision ID: 0001
Revises:
Create Date: 2026-05-01
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The database types only; ``tables.UTCDateTime`` adds the Python-side UTC handling.
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    tenants = op.create_table(
        "tenants",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("name", name="uq_tenants_name"),
    )
    op.create_table(
        "workloads",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("spec_text", sa.Text(), nullable=False),
        sa.Column("spec_format", sa.String(16), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("desired", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("restarts", sa.Integer(), nullable=False),
        sa.Column("max_restarts", sa.Integer(), nullable=False),
        sa.Column("placement", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_workloads"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_workloads_tenant_id_tenants"
        ),
        sa.CheckConstraint("kind IN ('training', 'service', 'batch')", name="ck_workloads_kind"),
        sa.CheckConstraint(
            "spec_format IN ('intercloud', 'skypilot')", name="ck_workloads_spec_format"
        ),
        sa.CheckConstraint("desired IN ('run', 'cancel')", name="ck_workloads_desired"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_workloads_state", "workloads", ["state"])
    op.create_index("ix_workloads_tenant_id_state", "workloads", ["tenant_id", "state"])
    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workload_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("allocation", sa.JSON(), nullable=True),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_attempts"),
        sa.ForeignKeyConstraint(
            ["workload_id"], ["workloads.id"], name="fk_attempts_workload_id_workloads"
        ),
        sa.UniqueConstraint("workload_id", "attempt", name="uq_attempts_workload_id_attempt"),
    )
    op.create_table(
        "nodes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workload_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("start_time", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_nodes"),
        sa.ForeignKeyConstraint(
            ["workload_id"], ["workloads.id"], name="fk_nodes_workload_id_workloads"
        ),
        sa.UniqueConstraint(
            "workload_id", "attempt", "rank", name="uq_nodes_workload_id_attempt_rank"
        ),
        sa.CheckConstraint(
            "state IN ('starting', 'running', 'exited', 'lost', 'killed')", name="ck_nodes_state"
        ),
    )
    op.create_index("ix_nodes_state", "nodes", ["state"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workload_id", sa.Integer(), nullable=True),
        sa.Column("time", TS, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("from_state", sa.String(24), nullable=True),
        sa.Column("to_state", sa.String(24), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.ForeignKeyConstraint(
            ["workload_id"], ["workloads.id"], name="fk_events_workload_id_workloads"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_workload_id_id", "events", ["workload_id", "id"])
    op.create_table(
        "settings",
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_settings"),
    )
    op.bulk_insert(tenants, [{"name": "default", "created_at": datetime.now(UTC)}])


def downgrade() -> None:
    for table in ("settings", "events", "nodes", "attempts", "workloads", "tenants"):
        op.drop_table(table)
