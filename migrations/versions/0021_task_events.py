"""task_events: an event may be of a task (with or without a run): run_events.run_id nullable,
task_id / conversation_id / agent_id with partial indexes for the event filters, and a task's own
sequence for its run-less events

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def _only(condition: str) -> dict:
    return {"postgresql_where": sa.text(condition), "sqlite_where": sa.text(condition)}


def upgrade() -> None:
    with op.batch_alter_table("run_events") as batch:
        batch.alter_column("run_id", existing_type=sa.Uuid(), nullable=True)
        batch.add_column(sa.Column("task_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("conversation_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("agent_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_run_events_task_id_commands"), "commands", ["task_id"], ["id"], ondelete="CASCADE"
        )
    op.create_index("uq_run_events_task_seq", "run_events", ["task_id", "seq"], unique=True, **_only("run_id IS NULL"))
    op.create_index("ix_run_events_task_time", "run_events", ["task_id", "time"], **_only("task_id IS NOT NULL"))
    op.create_index(
        "ix_run_events_conversation_time",
        "run_events",
        ["conversation_id", "time"],
        **_only("conversation_id IS NOT NULL"),
    )
    op.create_index("ix_run_events_agent_time", "run_events", ["agent_id", "time"], **_only("agent_id IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_run_events_agent_time", table_name="run_events")
    op.drop_index("ix_run_events_conversation_time", table_name="run_events")
    op.drop_index("ix_run_events_task_time", table_name="run_events")
    op.drop_index("uq_run_events_task_seq", table_name="run_events")
    op.execute("DELETE FROM run_events WHERE run_id IS NULL")
    with op.batch_alter_table("run_events") as batch:
        batch.drop_constraint(op.f("fk_run_events_task_id_commands"), type_="foreignkey")
        batch.drop_column("agent_id")
        batch.drop_column("conversation_id")
        batch.drop_column("task_id")
        batch.alter_column("run_id", existing_type=sa.Uuid(), nullable=False)
