"""outbox order within a run or a task: the value its events' outbox rows were last ordered by

Revision ID: 0029
Revises: 0028
"""

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # See app/outbox/models.py `ordered_xact`. 0 for what exists: the next event takes its own
    # transaction's id, above every outbox row already written, once no server of an older version
    # writes events (those write the bare id and leave this column alone, so during a rolling upgrade a
    # run's events can still leave the outbox out of order, as before it).
    for table in ("runs", "commands"):
        op.add_column(table, sa.Column("outbox_xact", sa.BigInteger(), server_default="0", nullable=False))


def downgrade() -> None:
    for table in ("runs", "commands"):
        op.drop_column(table, "outbox_xact")
