"""Capacity as durable state: instances, offering cool-downs, provider health.

- ``instances``: one row per unit of capacity intercloud asked a provider for, with its
  lifecycle, owner job node, node-agent assignment and secret hash (``tables.InstanceModel``).
- ``offering_blocks``: cool-downs after capacity or quota refusals (failover).
- ``provider_health``: whether a provider answers; ``down_since`` marks it down.
- ``events.instance_id``: instance transitions are events too.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("instance_type", sa.String(128), nullable=False),
        sa.Column("pricing", sa.String(16), nullable=False),
        sa.Column("contract", sa.String(128), nullable=True),
        sa.Column("usd_per_hour", sa.Float(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("provider_instance_id", sa.String(128), nullable=True),
        sa.Column("address", sa.String(255), nullable=True),
        sa.Column("workload_id", sa.Integer(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("assignment", sa.JSON(), nullable=True),
        sa.Column("assignment_state", sa.String(16), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("secret_hash", sa.String(128), nullable=True),
        sa.Column("failure_kind", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("running_at", TS, nullable=True),
        sa.Column("idle_since", TS, nullable=True),
        sa.Column("heartbeat_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_instances"),
        sa.ForeignKeyConstraint(
            ["workload_id"], ["workloads.id"], name="fk_instances_workload_id_workloads"
        ),
        sa.UniqueConstraint("request_id", "slot", name="uq_instances_request_id_slot"),
        sa.CheckConstraint(
            "state IN ('requested', 'allocated', 'running', 'draining', 'terminating', "
            "'terminated', 'failed')",
            name="ck_instances_state",
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_instances_state", "instances", ["state"])
    op.create_index("ix_instances_workload_id", "instances", ["workload_id"])
    op.create_index(
        "ix_instances_provider_provider_instance_id",
        "instances",
        ["provider", "provider_instance_id"],
    )
    op.create_table(
        "offering_blocks",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("instance_type", sa.String(128), nullable=False),
        sa.Column("pricing", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("until", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_offering_blocks"),
        sa.UniqueConstraint(
            "provider",
            "region",
            "zone",
            "instance_type",
            "pricing",
            name="uq_offering_blocks_provider_region_zone_instance_type_pricing",
        ),
    )
    op.create_table(
        "provider_health",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("last_ok_at", TS, nullable=True),
        sa.Column("last_error_at", TS, nullable=True),
        sa.Column("first_error_at", TS, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_kind", sa.String(16), nullable=True),
        sa.Column("down_since", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_provider_health"),
    )
    op.add_column("events", sa.Column("instance_id", sa.Integer(), nullable=True))
    op.create_index("ix_events_instance_id_id", "events", ["instance_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_events_instance_id_id", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("instance_id")
    op.drop_table("provider_health")
    op.drop_table("offering_blocks")
    op.drop_index("ix_instances_provider_provider_instance_id", table_name="instances")
    op.drop_index("ix_instances_workload_id", table_name="instances")
    op.drop_index("ix_instances_state", table_name="instances")
    op.drop_table("instances")
