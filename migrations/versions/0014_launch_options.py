"""launch_options: how a current-generation browser is launched beyond the viewport and locale (headless,
proxy, extensions, network traffic rules), kept apart from the older generations' `config`

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runtimes') as batch:
        batch.add_column(sa.Column('launch_options', JSONType, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runtimes') as batch:
        batch.drop_column('launch_options')
