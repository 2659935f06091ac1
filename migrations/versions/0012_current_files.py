"""current_files: run_inputs (space files bound to a run as its inputs)

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_inputs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("file_id", sa.Uuid(), nullable=False),
        sa.Column("runtime_path", sa.String(length=4096), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_detail", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_run_inputs_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_inputs_run_id_runs"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["file_id"], ["storage_files.id"], name=op.f("fk_run_inputs_file_id_storage_files"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_inputs")),
        sa.UniqueConstraint("run_id", "file_id", name="uq_run_inputs_run_file"),
    )
    op.create_index(op.f("ix_run_inputs_account_id"), "run_inputs", ["account_id"], unique=False)
    op.create_index(op.f("ix_run_inputs_run_id"), "run_inputs", ["run_id"], unique=False)
    op.create_index(op.f("ix_run_inputs_file_id"), "run_inputs", ["file_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_run_inputs_file_id"), table_name="run_inputs")
    op.drop_index(op.f("ix_run_inputs_run_id"), table_name="run_inputs")
    op.drop_index(op.f("ix_run_inputs_account_id"), table_name="run_inputs")
    op.drop_table("run_inputs")
