"""the last verification of each community's audit chain, hashes looked up, communities' addresses

The public board shows each chain's last verification (the clock walks the chains every hour)
and tells a resident whether a hash they hold (from a digest or a printed notice) is in the
chain: `audit_log.hash` is indexed for that. A community's address on the board (its `slug`
setting) is nobody else's.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_checks",
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("checked_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("broken", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"], ["scopes.id"], name=op.f("fk_audit_checks_community_id_scopes")
        ),
        sa.PrimaryKeyConstraint("community_id", name=op.f("pk_audit_checks")),
    )
    op.create_index(op.f("ix_audit_log_hash"), "audit_log", ["hash"])
    where = sa.text("key = 'slug' AND value <> ''")
    op.create_index(
        "uq_settings_slug", "settings", ["value"], unique=True, sqlite_where=where, postgresql_where=where
    )


def downgrade() -> None:
    op.drop_index("uq_settings_slug", table_name="settings")
    op.drop_index(op.f("ix_audit_log_hash"), table_name="audit_log")
    op.drop_table("audit_checks")
