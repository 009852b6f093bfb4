"""Scheduled campaigns: a campaign's status and release moment, and its recipients until then.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("status", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("release_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("released_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_campaigns_release", "campaigns", ["status", "release_at"], unique=False)
    op.create_table(
        "scheduled_recipients",
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "line"),
    )


def downgrade() -> None:
    op.drop_table("scheduled_recipients")
    op.drop_index("ix_campaigns_release", table_name="campaigns")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("released_at")
        batch.drop_column("release_at")
        batch.drop_column("status")
