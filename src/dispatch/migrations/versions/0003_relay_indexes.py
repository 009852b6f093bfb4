"""Indexes for the relay: messages never handed to the queue, and those handed over long ago.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UNSENT = "status = 'queued' AND enqueued_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.create_index("ix_messages_enqueued", ["status", "enqueued_at"], unique=False)
        batch.create_index(
            "ix_messages_unsent", ["id"], unique=False, sqlite_where=sa.text(UNSENT), postgresql_where=sa.text(UNSENT)
        )


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_unsent")
        batch.drop_index("ix_messages_enqueued")
