"""Submission context of a workload: the submitter's environment and resolved file paths.

``workloads.submission`` (JSON, nullable) holds what the spec text alone cannot say and
the daemon needs when it starts the job later: ``{"env": {NAME: VALUE}, "spec_dir":
"/abs/folder", "files": {"workdir": "/abs/src" | null, "file_mounts": [[DEST, "/abs/src"],
...]}, "plan": {placement at submission}}``. Null for workloads stored without one.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workloads") as batch:
        batch.add_column(sa.Column("submission", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workloads") as batch:
        batch.drop_column("submission")
