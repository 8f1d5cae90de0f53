"""Quota ceilings: ``tenants.quota_ceiling``, the quotas an admin gave a tenant, within
which its tenant-admins may set its ``quotas`` (nullable: NULL until an admin sets the
quotas after this revision; the current quotas are the ceiling then).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("quota_ceiling", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("quota_ceiling")
