"""groups: WeCom group robots — bound by the operator (no person), their webhook URL as the chat,
and whether each takes Markdown

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.alter_column("bound_by", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column(
            "chat_id",
            existing_type=sa.String(length=128),
            type_=sa.String(length=512),
            existing_nullable=False,
        )
        batch_op.add_column(sa.Column("markdown", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.drop_column("markdown")
        batch_op.alter_column(
            "chat_id",
            existing_type=sa.String(length=512),
            type_=sa.String(length=128),
            existing_nullable=False,
        )
        batch_op.alter_column("bound_by", existing_type=sa.Integer(), nullable=False)
