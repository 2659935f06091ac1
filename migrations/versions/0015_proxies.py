"""proxies: saved proxies an account's browsers may leave through (the password encrypted)

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proxies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("protocol", sa.String(length=16), nullable=False),
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=256), nullable=True),
        sa.Column("password_encrypted", sa.Text(), nullable=True),
        sa.Column("dns_resolution", sa.String(length=16), nullable=True),
        sa.Column("udp_mode", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_proxies_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proxies")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_proxies_account_id")),
    )
    op.create_index(op.f("ix_proxies_account_id"), "proxies", ["account_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_proxies_account_id"), table_name="proxies")
    op.drop_table("proxies")
