"""Digital mailboxes (SPEC §6): the cached answer of each provider's eligibility look-up.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"  # given as "0007"; chained after main's head (0009 offers, then 0008 governance)
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mailbox_eligibility",
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("person", sa.String(length=64), nullable=False),
        sa.Column("eligible", sa.Boolean(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider", "person"),
    )


def downgrade() -> None:
    op.drop_table("mailbox_eligibility")
