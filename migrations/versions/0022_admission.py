"""admission: the queue of browser starts

Revision ID: 0022
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admission_tickets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("runtime_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("space_id", sa.Uuid(), nullable=False),
        sa.Column("driver", sa.String(length=16), nullable=False),
        sa.Column("location", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["runtime_id"], ["runtimes.id"], name=op.f("fk_admission_tickets_runtime_id_runtimes"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_admission_tickets_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["space_id"], ["spaces.id"], name=op.f("fk_admission_tickets_space_id_spaces"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admission_tickets")),
        sa.UniqueConstraint("seq", name=op.f("uq_admission_tickets_seq")),
    )
    op.create_index("ix_admission_tickets_pool_seq", "admission_tickets", ["driver", "location", "seq"])
    op.create_index(op.f("ix_admission_tickets_runtime_id"), "admission_tickets", ["runtime_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_admission_tickets_runtime_id"), table_name="admission_tickets")
    op.drop_index("ix_admission_tickets_pool_seq", table_name="admission_tickets")
    op.drop_table("admission_tickets")
