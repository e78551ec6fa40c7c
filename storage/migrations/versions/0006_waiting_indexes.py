"""outbox and due work: indexes of what still waits, not of everything ever sent or done

A sender and a clock look for the messages and the due work still waiting, many times a minute;
an index over every row ever sent or done made each look slower as the tables grew.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING_MESSAGE = sa.text("sent_at IS NULL AND failed_at IS NULL")
WAITING_WORK = sa.text("fired_at IS NULL")


def upgrade() -> None:
    op.drop_index("ix_outbox_next_attempt_at", table_name="outbox")
    op.create_index(
        "ix_outbox_waiting",
        "outbox",
        ["next_attempt_at"],
        sqlite_where=WAITING_MESSAGE,
        postgresql_where=WAITING_MESSAGE,
    )
    op.drop_index("ix_due_work_due_at", table_name="due_work")
    op.drop_index("ix_due_work_fired_at", table_name="due_work")
    op.create_index(
        "ix_due_work_waiting",
        "due_work",
        ["due_at"],
        sqlite_where=WAITING_WORK,
        postgresql_where=WAITING_WORK,
    )


def downgrade() -> None:
    op.drop_index("ix_due_work_waiting", table_name="due_work")
    op.create_index("ix_due_work_fired_at", "due_work", ["fired_at"])
    op.create_index("ix_due_work_due_at", "due_work", ["due_at"])
    op.drop_index("ix_outbox_waiting", table_name="outbox")
    op.create_index("ix_outbox_next_attempt_at", "outbox", ["next_attempt_at"])
