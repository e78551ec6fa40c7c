"""groups bound to scopes, updates handled once, and an outbox addressed to people and groups

Outbox rows were addressed to one chat account; they are addressed to a person (or a bound
group) now, and the account is chosen when a row is sent: the one the person used last that
can be reached. A row whose account has no person any more fails, as it could not be sent.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.types import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING_BEFORE = sa.text("sent_at IS NULL AND failed_at IS NULL")
WAITING = sa.text("sent_at IS NULL AND failed_at IS NULL AND held_at IS NULL")
HELD = sa.text("held_at IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("chat_id", sa.String(length=128), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=False),
        sa.Column("scope_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("bound_by", sa.Integer(), nullable=False),
        sa.Column("bound_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("unbound_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("blocked_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["bound_by"], ["people.id"], name=op.f("fk_groups_bound_by_people")),
        sa.ForeignKeyConstraint(["community_id"], ["scopes.id"], name=op.f("fk_groups_community_id_scopes")),
        sa.ForeignKeyConstraint(["scope_id"], ["scopes.id"], name=op.f("fk_groups_scope_id_scopes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_groups")),
        sa.UniqueConstraint("channel", "chat_id", name=op.f("uq_groups_channel_chat_id")),
    )
    op.create_index(op.f("ix_groups_community_id"), "groups", ["community_id"])
    bound = sa.text("unbound_at IS NULL")
    op.create_index(
        "uq_groups_bound_scope",
        "groups",
        ["scope_id", "channel"],
        unique=True,
        sqlite_where=bound,
        postgresql_where=bound,
    )
    op.create_table(
        "handled_updates",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("handled_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "key", name=op.f("pk_handled_updates")),
    )
    op.create_index(op.f("ix_handled_updates_handled_at"), "handled_updates", ["handled_at"])
    with op.batch_alter_table("settings") as batch:  # a privacy notice is a paragraph
        batch.alter_column(
            "value", existing_type=sa.String(length=200), type_=sa.Text(), existing_nullable=False
        )
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("last_seen_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("blocked_at", UTCDateTime(timezone=True), nullable=True))

    op.drop_index("ix_outbox_waiting", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("person_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("group_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("reason", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("held_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("sent_ref", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("live", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("edited_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("shown", sa.Text(), nullable=True))
        batch.alter_column("account_id", existing_type=sa.Integer(), nullable=True)
        batch.drop_index("ix_outbox_account_id")
    conn = op.get_bind()
    conn.execute(
        sa.text(
            "UPDATE outbox SET person_id = (SELECT person_id FROM accounts WHERE accounts.id = outbox.account_id)"
        )
    )
    # a row for an account bound to nobody could never be sent, nor be addressed to anyone now
    conn.execute(sa.text("DELETE FROM outbox WHERE person_id IS NULL"))
    with op.batch_alter_table("outbox") as batch:
        batch.create_foreign_key(op.f("fk_outbox_person_id_people"), "people", ["person_id"], ["id"])
        batch.create_foreign_key(op.f("fk_outbox_group_id_groups"), "groups", ["group_id"], ["id"])
        batch.create_check_constraint("one_target", "(person_id IS NULL) <> (group_id IS NULL)")
        batch.create_index(op.f("ix_outbox_group_id"), ["group_id"])
    op.create_index(
        "ix_outbox_waiting", "outbox", ["next_attempt_at"], sqlite_where=WAITING, postgresql_where=WAITING
    )
    op.create_index(
        "ix_outbox_held", "outbox", ["person_id", "group_id"], sqlite_where=HELD, postgresql_where=HELD
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_held", table_name="outbox")
    op.drop_index("ix_outbox_waiting", table_name="outbox")
    conn = op.get_bind()
    if conn.execute(sa.text("SELECT count(*) FROM outbox WHERE group_id IS NOT NULL")).scalar():
        raise RuntimeError(
            "the outbox holds messages to groups, which 0007 cannot address: deliver them first"
        )
    conn.execute(
        sa.text(
            "UPDATE outbox SET account_id = (SELECT max(id) FROM accounts WHERE accounts.person_id = outbox.person_id) "
            "WHERE account_id IS NULL"
        )
    )
    conn.execute(sa.text("DELETE FROM outbox WHERE account_id IS NULL"))
    with op.batch_alter_table("outbox") as batch:
        batch.drop_constraint(op.f("ck_outbox_one_target"), type_="check")
        batch.drop_index("ix_outbox_group_id")
        batch.drop_constraint("fk_outbox_group_id_groups", type_="foreignkey")
        batch.drop_constraint("fk_outbox_person_id_people", type_="foreignkey")
        batch.alter_column("account_id", existing_type=sa.Integer(), nullable=False)
        batch.create_index("ix_outbox_account_id", ["account_id"])
        for column in (
            "shown",
            "edited_at",
            "live",
            "sent_ref",
            "held_at",
            "reason",
            "group_id",
            "person_id",
        ):
            batch.drop_column(column)
    op.create_index(
        "ix_outbox_waiting",
        "outbox",
        ["next_attempt_at"],
        sqlite_where=WAITING_BEFORE,
        postgresql_where=WAITING_BEFORE,
    )
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("blocked_at")
        batch.drop_column("last_seen_at")
    with op.batch_alter_table("settings") as batch:
        batch.alter_column(
            "value", existing_type=sa.Text(), type_=sa.String(length=200), existing_nullable=False
        )
    op.drop_index(op.f("ix_handled_updates_handled_at"), table_name="handled_updates")
    op.drop_table("handled_updates")
    op.drop_index("uq_groups_bound_scope", table_name="groups")
    op.drop_index(op.f("ix_groups_community_id"), table_name="groups")
    op.drop_table("groups")
