"""Written offers after a phone sale and their append-only states (SPEC §13).

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "offers",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("message_id", sa.String(length=26), nullable=True),
        sa.Column("recipient_id", sa.String(length=128), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("recipient", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("contract_message_id", sa.String(length=26), nullable=True),
        sa.Column("copy_message_id", sa.String(length=26), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_offers_recipient", "offers", ["recipient_id", "created_at"], unique=False)
    op.create_index("ix_offers_due", "offers", ["state", "valid_until"], unique=False)
    op.create_index("ix_offers_message", "offers", ["message_id"], unique=False)
    op.create_table(
        "offer_states",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("offer_id", sa.String(length=26), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("wording_version", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("offer_id", "state", name="uq_offer_states_offer_state"),
    )


def downgrade() -> None:
    op.drop_table("offer_states")
    op.drop_index("ix_offers_message", table_name="offers")
    op.drop_index("ix_offers_due", table_name="offers")
    op.drop_index("ix_offers_recipient", table_name="offers")
    op.drop_table("offers")
