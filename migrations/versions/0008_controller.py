"""controller: the runtime row records who controls it (with a fencing epoch), and server processes
heartbeat, so that sockets attached through a dead process can be detached

Revision ID: 0008
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runtimes') as batch:
        batch.add_column(sa.Column('controller_kind', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('controller_id', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('controller_epoch', sa.BigInteger(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('controller_expires_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'server_processes',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('process_start', sa.String(length=32), nullable=True),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )


def downgrade() -> None:
    op.drop_table('server_processes')
    with op.batch_alter_table('runtimes') as batch:
        batch.drop_column('controller_expires_at')
        batch.drop_column('controller_epoch')
        batch.drop_column('controller_id')
        batch.drop_column('controller_kind')
