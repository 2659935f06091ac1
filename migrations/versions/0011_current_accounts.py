"""current_accounts: an API key's expiry, last use and use count; an account's branding settings

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('api_keys') as batch:
        batch.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('usage_count', sa.BigInteger(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('accounts') as batch:
        batch.add_column(sa.Column('branding', JSONType, nullable=True))
        batch.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('accounts') as batch:
        batch.drop_column('updated_at')
        batch.drop_column('branding')
    with op.batch_alter_table('api_keys') as batch:
        batch.drop_column('updated_at')
        batch.drop_column('usage_count')
        batch.drop_column('last_used_at')
        batch.drop_column('expires_at')
