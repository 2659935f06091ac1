"""usage: spending caps

Revision ID: 0024
Revises: 0023
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spending_caps",
        sa.Column("scope_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("space_id", sa.Uuid(), nullable=True),
        sa.Column("amount_cents", sa.BigInteger(), nullable=True),
        sa.Column("warn_at_percent", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_spending_caps_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["space_id"], ["spaces.id"], name=op.f("fk_spending_caps_space_id_spaces"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("scope_id", name=op.f("pk_spending_caps")),
    )
    op.create_index(op.f("ix_spending_caps_account_id"), "spending_caps", ["account_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_spending_caps_account_id"), table_name="spending_caps")
    op.drop_table("spending_caps")
