"""a ballot writes no index its unique key already is; live vote messages and namesakes have theirs

`ix_ballots_poll_id` and `ix_participations_poll_id` repeated the first column of each table's
unique (poll_id, unit_id) index: one more index page written with every ballot, read by no
query the unique index does not serve. After each delivery the groups' vote messages kept
current are looked for: `ix_outbox_live` holds only those, so the look no longer reads the
whole outbox. Whether a person has a namesake in their community (said with each message to
them) was found by reading every person of the community: `ix_people_community_id_name`
finds it by name, and serves what `ix_people_community_id` did.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# as storage/models.py has them (a migration does not import the models, which move on)
LIVE_SQLITE = "live IS 1 AND sent_ref IS NOT NULL"
LIVE_POSTGRESQL = "live IS true AND sent_ref IS NOT NULL"


def upgrade() -> None:
    op.drop_index(op.f("ix_ballots_poll_id"), table_name="ballots")
    op.drop_index(op.f("ix_participations_poll_id"), table_name="participations")
    op.drop_index(op.f("ix_people_community_id"), table_name="people")
    op.create_index("ix_people_community_id_name", "people", ["community_id", "name"])
    op.create_index(
        "ix_outbox_live",
        "outbox",
        ["id"],
        sqlite_where=sa.text(LIVE_SQLITE),
        postgresql_where=sa.text(LIVE_POSTGRESQL),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_live", table_name="outbox")
    op.drop_index("ix_people_community_id_name", table_name="people")
    op.create_index(op.f("ix_people_community_id"), "people", ["community_id"])
    op.create_index(op.f("ix_participations_poll_id"), "participations", ["poll_id"])
    op.create_index(op.f("ix_ballots_poll_id"), "ballots", ["poll_id"])
