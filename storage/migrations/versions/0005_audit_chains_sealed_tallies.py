"""an audit chain per community (today's chain frozen as it is), sealed tallies of secret polls

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 10:30:00

The single chain of before is kept as the `frozen` chain: its rows keep their hashes (each
over the row's id), its head is the old head row's, and `yishi audit verify` still checks it.
Every new chain (one per community, one for rows of no community) starts from the frozen
head as the prev_hash of its first row, so a head printed before this migration can still be
found. Open secret polls keep their plain tallies until their next ballot seals them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64
FROZEN, NONE = 1, 2


def upgrade() -> None:
    chains = op.create_table(
        "audit_chains",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("community_id", sa.Integer(), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("origin", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"], ["scopes.id"], name=op.f("fk_audit_chains_community_id_scopes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chains")),
        sa.UniqueConstraint("community_id", name=op.f("uq_audit_chains_community_id")),
    )
    conn = op.get_bind()
    last_id, head = conn.execute(sa.text("SELECT last_id, hash FROM audit_head WHERE id = 1")).one()
    communities = conn.execute(
        sa.text("SELECT id FROM scopes WHERE level = 'community' ORDER BY id")
    ).scalars()
    op.bulk_insert(
        chains,
        [
            {
                "id": FROZEN,
                "kind": "frozen",
                "community_id": None,
                "seq": last_id,
                "hash": head,
                "origin": GENESIS,
            },
            {"id": NONE, "kind": "none", "community_id": None, "seq": 0, "hash": head, "origin": head},
            *(
                {
                    "id": NONE + n,
                    "kind": "community",
                    "community_id": c,
                    "seq": 0,
                    "hash": head,
                    "origin": head,
                }
                for n, c in enumerate(communities, 1)
            ),
        ],
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
    # the frozen chain's rows were numbered 1, 2, 3 … by their ids
    conn.execute(sa.text("UPDATE audit_log SET chain_id = :frozen, seq = id"), {"frozen": FROZEN})
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.alter_column("chain_id", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_audit_log_chain_id_audit_chains"), "audit_chains", ["chain_id"], ["id"]
        )
        batch_op.create_unique_constraint(batch_op.f("uq_audit_log_chain_id_seq"), ["chain_id", "seq"])
    op.drop_table("audit_head")
    with op.batch_alter_table("polls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed", sa.Text(), nullable=True))
    if conn.dialect.name == "postgresql":
        # the old appends gave ids themselves: the sequences start after what is there
        for table in ("audit_log", "audit_chains"):
            conn.execute(
                sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
                )
            )


def downgrade() -> None:
    conn = op.get_bind()
    newer = conn.execute(
        sa.text("SELECT COUNT(*) FROM audit_log WHERE chain_id <> :frozen"), {"frozen": FROZEN}
    ).scalar()
    if newer:
        raise RuntimeError(
            f"{newer} audit rows belong to the per-community chains, which the single chain of "
            "migration 0004 cannot hold: downgrading would lose them"
        )
    seq, head = conn.execute(
        sa.text("SELECT seq, hash FROM audit_chains WHERE id = :frozen"), {"frozen": FROZEN}
    ).one()
    with op.batch_alter_table("polls", schema=None) as batch_op:
        batch_op.drop_column("sealed")
    audit_head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.bulk_insert(audit_head, [{"id": 1, "last_id": seq, "hash": head}])
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_log_chain_id_seq"), type_="unique")
        batch_op.drop_constraint(batch_op.f("fk_audit_log_chain_id_audit_chains"), type_="foreignkey")
        batch_op.drop_column("seq")
        batch_op.drop_column("chain_id")
    op.drop_table("audit_chains")
