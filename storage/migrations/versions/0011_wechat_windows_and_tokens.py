"""accounts' chat windows (WeChat's customer-service quota) and the platforms' shared access tokens

A WeChat account may be written to on the bot's own initiative only within a window its owner
opened (5 messages within 48 hours of their message, 3 within a minute of a menu click): the
window is kept with the account, so that every process counts from the same quota. The Official
Account's access token is fetched by one process and shared by all.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("window_until", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("window_left", sa.Integer(), nullable=True))
    op.create_table(
        "platform_tokens",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_platform_tokens")),
    )


def downgrade() -> None:
    op.drop_table("platform_tokens")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("window_left")
        batch_op.drop_column("window_until")
