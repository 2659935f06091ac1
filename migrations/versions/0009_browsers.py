"""browsers: what the current generation keeps about a runtime (saved state, idle expiry, last use) and a run's end reason

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runtimes') as batch:
        batch.add_column(sa.Column('keep_state', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('saved_state', JSONType, nullable=True))
        batch.add_column(sa.Column('expire_after_idle_days', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('controller_since', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('runs') as batch:
        batch.add_column(sa.Column('end_reason', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs') as batch:
        batch.drop_column('end_reason')
    with op.batch_alter_table('runtimes') as batch:
        batch.drop_column('controller_since')
        batch.drop_column('last_used_at')
        batch.drop_column('expire_after_idle_days')
        batch.drop_column('saved_state')
        batch.drop_column('keep_state')
