"""views: scoped, expiring, revocable view links (their token kept as a keyed digest) and the viewer links their pages mint

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'views',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('account_id', sa.Uuid(), nullable=False),
        sa.Column('space_id', sa.Uuid(), nullable=False),
        sa.Column('scope', sa.String(length=16), nullable=False),
        sa.Column('runtime_id', sa.Uuid(), nullable=True),
        sa.Column('run_id', sa.Uuid(), nullable=True),
        sa.Column('runtime_ids', JSONType, nullable=True),
        sa.Column('components', JSONType, nullable=False),
        sa.Column('control', sa.Boolean(), nullable=False),
        sa.Column('presentation', JSONType, nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['space_id'], ['spaces.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_views_account_id', 'views', ['account_id'], unique=False)
    op.create_index('ix_views_space_id', 'views', ['space_id'], unique=False)
    op.create_table(
        'view_viewers',
        sa.Column('viewer_id', sa.Uuid(), nullable=False),
        sa.Column('view_id', sa.Uuid(), nullable=False),
        sa.Column('run_id', sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(['viewer_id'], ['viewers.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['view_id'], ['views.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('viewer_id'),
    )
    op.create_index('ix_view_viewers_view_id', 'view_viewers', ['view_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_view_viewers_view_id', table_name='view_viewers')
    op.drop_table('view_viewers')
    op.drop_index('ix_views_space_id', table_name='views')
    op.drop_index('ix_views_account_id', table_name='views')
    op.drop_table('views')
