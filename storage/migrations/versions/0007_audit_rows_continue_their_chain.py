"""audit_log: the database refuses a row that does not continue its chain, and moves the head

A row appended to a chain must follow the chain's head (its place one after the head's, its
prev_hash the head's hash); once inserted, it is the head. Kept by triggers, so that every
writer, ours or not, meets the rule, and an append is one statement.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 19:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE = "an audit row must continue its chain"

SQLITE = [
    f"""
    CREATE TRIGGER audit_log_continues_its_chain BEFORE INSERT ON audit_log
    WHEN NOT EXISTS (
        SELECT 1 FROM audit_chains
        WHERE id = NEW.chain_id AND seq = NEW.seq - 1 AND hash = NEW.prev_hash
    )
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END
    """,
    """
    CREATE TRIGGER audit_log_moves_its_head AFTER INSERT ON audit_log
    BEGIN UPDATE audit_chains SET seq = NEW.seq, hash = NEW.hash WHERE id = NEW.chain_id; END
    """,
]

POSTGRESQL = [
    f"""
    CREATE FUNCTION audit_log_appended() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE audit_chains SET seq = NEW.seq, hash = NEW.hash
        WHERE id = NEW.chain_id AND seq = NEW.seq - 1 AND hash = NEW.prev_hash;
        IF NOT FOUND THEN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER audit_log_continues_its_chain BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_appended()
    """,
]


def upgrade() -> None:
    for statement in SQLITE if op.get_bind().dialect.name == "sqlite" else POSTGRESQL:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER audit_log_moves_its_head")
        op.execute("DROP TRIGGER audit_log_continues_its_chain")
    else:
        op.execute("DROP TRIGGER audit_log_continues_its_chain ON audit_log")
        op.execute("DROP FUNCTION audit_log_appended()")
