"""tenants: subaccounts, key scopes

Revision ID: 0023
Revises: 0022
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("limits", JSONType, nullable=True))
        # A subaccount is an account with a parent (one level: a subaccount has no children).
        batch.add_column(sa.Column("parent_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("status", sa.String(length=16), nullable=False, server_default="active"))
        batch.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("external_id", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("metadata", JSONType, nullable=True))
        batch.create_foreign_key(
            "fk_accounts_parent_id_accounts", "accounts", ["parent_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_accounts_parent_id", ["parent_id"])
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("scopes", JSONType, nullable=True))
    with op.batch_alter_table("connections") as batch:
        # The API key whose request made the lease: revoking the key closes its sockets.
        batch.add_column(sa.Column("api_key_id", sa.Uuid(), nullable=True))
        batch.create_index("ix_connections_api_key_id", ["api_key_id"])


def downgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.drop_index("ix_connections_api_key_id")
        batch.drop_column("api_key_id")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("scopes")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_index("ix_accounts_parent_id")
        batch.drop_constraint("fk_accounts_parent_id_accounts", type_="foreignkey")
        for column in ("metadata", "external_id", "archived_at", "status", "parent_id", "limits"):
            batch.drop_column(column)
