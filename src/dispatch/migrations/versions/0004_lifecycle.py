"""The lifecycle: claim leases, a record of every state change, ``sent`` apart from ``delivered``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24

Before this revision ``delivered`` meant "the provider accepted it"; that is ``sent``
now, and ``delivered`` is kept for a provider's confirmation (SPEC §7).
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "message_transitions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(length=26), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=True),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_message_transitions_message_id", "message_transitions", ["message_id"], unique=False)
    op.execute("UPDATE messages SET status = 'sent' WHERE status = 'delivered'")


def downgrade() -> None:
    op.execute("UPDATE messages SET status = 'delivered' WHERE status = 'sent'")
    op.drop_index("ix_message_transitions_message_id", table_name="message_transitions")
    op.drop_table("message_transitions")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("lease_expires_at")
