"""Template governance: each message's template version, and the append-only approvals of versions.

Revision ID: 0008
Revises: 0009 (re-chained after main landed 0009_offers on 0007)
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("template_version", sa.String(length=32), nullable=True))
    op.create_index("ix_messages_template_version", "messages", ["message_type", "template_version"], unique=False)
    op.create_index("ix_messages_campaign_page", "messages", ["campaign_id", "id"], unique=False)
    op.create_index("ix_messages_type_period", "messages", ["message_type", "decided_at", "id"], unique=False)
    op.create_index(
        "ix_messages_fallback_of",
        "messages",
        ["fallback_of"],
        unique=False,
        sqlite_where=sa.text("fallback_of IS NOT NULL"),
        postgresql_where=sa.text("fallback_of IS NOT NULL"),
    )
    op.create_table(
        "template_approvals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("message_type", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("source_language", sa.String(length=8), nullable=True),
        sa.Column("source_version", sa.String(length=32), nullable=True),
        sa.Column("by", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_template_approvals_template",
        "template_approvals",
        ["message_type", "language", "channel", "version"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_template_approvals_template", table_name="template_approvals")
    op.drop_table("template_approvals")
    op.drop_index("ix_messages_fallback_of", table_name="messages")
    op.drop_index("ix_messages_type_period", table_name="messages")
    op.drop_index("ix_messages_campaign_page", table_name="messages")
    op.drop_index("ix_messages_template_version", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("template_version")
