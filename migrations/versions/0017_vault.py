"""secrets and secret_versions: the vault (values encrypted under the server key), and secret_audit

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _sealed() -> list[sa.Column]:
    return [sa.Column(f"{name}_sealed", sa.Text(), nullable=True) for name in ("password", "totp", "value", "notes")]


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("username", sa.String(length=512), nullable=True),
        sa.Column("origins", JSONType, nullable=False),
        *_sealed(),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_secrets_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secrets")),
        sa.UniqueConstraint("account_id", "path", name=op.f("uq_secrets_account_id")),
    )
    op.create_index(op.f("ix_secrets_account_id"), "secrets", ["account_id"], unique=False)
    op.create_table(
        "secret_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("secret_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("username", sa.String(length=512), nullable=True),
        sa.Column("origins", JSONType, nullable=False),
        *_sealed(),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["secret_id"], ["secrets.id"], name=op.f("fk_secret_versions_secret_id_secrets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_secret_versions_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secret_versions")),
        sa.UniqueConstraint("secret_id", "version", name=op.f("uq_secret_versions_secret_id")),
    )
    op.create_index(op.f("ix_secret_versions_secret_id"), "secret_versions", ["secret_id"], unique=False)
    op.create_index(op.f("ix_secret_versions_account_id"), "secret_versions", ["account_id"], unique=False)
    op.create_table(
        "secret_audit",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("secret_id", sa.Uuid(), nullable=False),
        sa.Column("path", sa.String(length=512), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor", JSONType, nullable=False),
        sa.Column("detail", JSONType, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_secret_audit_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secret_audit")),
    )
    op.create_index(op.f("ix_secret_audit_account_id"), "secret_audit", ["account_id"], unique=False)
    op.create_index(op.f("ix_secret_audit_secret_id"), "secret_audit", ["secret_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_secret_audit_secret_id"), table_name="secret_audit")
    op.drop_index(op.f("ix_secret_audit_account_id"), table_name="secret_audit")
    op.drop_table("secret_audit")
    op.drop_index(op.f("ix_secret_versions_account_id"), table_name="secret_versions")
    op.drop_index(op.f("ix_secret_versions_secret_id"), table_name="secret_versions")
    op.drop_table("secret_versions")
    op.drop_index(op.f("ix_secrets_account_id"), table_name="secrets")
    op.drop_table("secrets")
