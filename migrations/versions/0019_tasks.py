"""tasks on the commands table, conversations and their messages

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("commands") as batch:
        batch.alter_column("run_id", existing_type=sa.Uuid(), nullable=True)
        batch.alter_column("runtime_id", existing_type=sa.Uuid(), nullable=True)
        batch.add_column(sa.Column("agent_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("agent_version_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("agent_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("conversation_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("input", JSONType, nullable=True))
        batch.add_column(sa.Column("metadata", JSONType, nullable=True))
        batch.add_column(sa.Column("output_schema", JSONType, nullable=True))
        batch.add_column(sa.Column("output", JSONType, nullable=True))
        batch.add_column(sa.Column("input_request", JSONType, nullable=True))
        batch.add_column(sa.Column("input_tokens", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("output_tokens", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("run_ids", JSONType, nullable=True))
        batch.add_column(sa.Column("launched_browser", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("trace_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_commands_task_agent", "commands", ["account_id", "agent_id"], unique=False)
    op.create_index("ix_commands_task_conversation", "commands", ["conversation_id"], unique=False)

    op.create_table(
        "conversations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("space_id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=True),
        sa.Column("title", sa.String(length=500), nullable=True),
        sa.Column("metadata", JSONType, nullable=True),
        sa.Column("active_task_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_conversations_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["space_id"], ["spaces.id"], name=op.f("fk_conversations_space_id_spaces"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    op.create_index(op.f("ix_conversations_account_id"), "conversations", ["account_id"], unique=False)
    op.create_index("ix_conversations_account_agent", "conversations", ["account_id", "agent_id"], unique=False)

    op.create_table(
        "conversation_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("content", JSONType, nullable=False),
        sa.Column("pending", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_messages_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_messages")),
    )
    op.create_index(
        "ix_conversation_messages_conv_seq", "conversation_messages", ["conversation_id", "seq"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_conversation_messages_conv_seq", table_name="conversation_messages")
    op.drop_table("conversation_messages")
    op.drop_index("ix_conversations_account_agent", table_name="conversations")
    op.drop_index(op.f("ix_conversations_account_id"), table_name="conversations")
    op.drop_table("conversations")
    op.drop_index("ix_commands_task_conversation", table_name="commands")
    op.drop_index("ix_commands_task_agent", table_name="commands")
    op.execute("DELETE FROM commands WHERE run_id IS NULL")
    with op.batch_alter_table("commands") as batch:
        for column in (
            "updated_at",
            "trace_id",
            "launched_browser",
            "run_ids",
            "output_tokens",
            "input_tokens",
            "input_request",
            "output",
            "output_schema",
            "metadata",
            "input",
            "conversation_id",
            "agent_version",
            "agent_version_id",
            "agent_id",
        ):
            batch.drop_column(column)
        batch.alter_column("runtime_id", existing_type=sa.Uuid(), nullable=False)
        batch.alter_column("run_id", existing_type=sa.Uuid(), nullable=False)
