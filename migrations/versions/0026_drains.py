"""drains and notification recipients

Revision ID: 0026
Revises: 0025
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _time(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "drains",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("destination", JSONType, nullable=False),
        sa.Column("headers_sealed", sa.Text(), nullable=True),
        sa.Column("secret_sealed", sa.Text(), nullable=True),
        sa.Column("categories", JSONType, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("cursor_xact", sa.BigInteger(), nullable=False),
        sa.Column("cursor_position", sa.BigInteger(), nullable=False),
        sa.Column("pending_xact", sa.BigInteger(), nullable=True),
        sa.Column("pending_position", sa.BigInteger(), nullable=True),
        sa.Column("events_sent", sa.BigInteger(), nullable=False),
        sa.Column("bytes_sent", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        _time("last_delivery_at"),
        sa.Column("last_error", sa.Text(), nullable=True),
        _time("last_error_at"),
        _time("next_attempt_at"),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        _time("lease_until"),
        _time("created_at", False),
        _time("updated_at", False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_drains_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drains")),
    )
    op.create_index("ix_drains_account_created", "drains", ["account_id", "id"], unique=False)
    op.create_table(
        "notification_recipients",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _time("created_at", False),
        _time("updated_at", False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_notification_recipients_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_recipients")),
    )
    op.create_index(
        "uq_notification_recipients_value", "notification_recipients", ["account_id", "type", "value"], unique=True
    )
    op.create_index(
        "ix_notification_recipients_account_created", "notification_recipients", ["account_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_notification_recipients_account_created", table_name="notification_recipients")
    op.drop_index("uq_notification_recipients_value", table_name="notification_recipients")
    op.drop_table("notification_recipients")
    op.drop_index("ix_drains_account_created", table_name="drains")
    op.drop_table("drains")
