"""Initial schema: messages, delivery attempts, campaigns, consent ledger, registers.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from alembic import op

from dispatch.schema import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The first revision creates the tables as declared; later revisions alter them.
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
