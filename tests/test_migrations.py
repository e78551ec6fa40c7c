"""Alembic: from an empty database to the newest migration, on SQLite and on PostgreSQL.

Each test gets a database of its own (a new SQLite file, or a new PostgreSQL database
created through the admin URL and dropped afterwards), never the migrated template.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from bot.app import App
from bot.config import Config
from flows import audit, register
from storage.db import Database
from storage.migrate import (
    MIGRATIONS,
    SchemaBehind,
    alembic_config,
    current_revision,
    head_revision,
    require_current,
    upgrade,
)
from storage.models import AuditLog, Base, Scope
from tests.conftest import PG_ADMIN_URL, REGISTER, START


@pytest.fixture(params=["sqlite", "postgres"])
def empty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database with no tables at all."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'empty.db'}")
        yield database
        database.dispose()
        return
    request.getfixturevalue("postgres_url")  # skips (or fails on CI) where PostgreSQL is not reachable
    name = f"yishi_migrate_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    database = Database(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    try:
        yield database
    finally:
        database.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def table_names(db: Database) -> set[str]:
    return set(sa.inspect(db.engine).get_table_names())


def schema_diff(db: Database) -> list:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return compare_metadata(context, Base.metadata)


def test_the_migrations_form_one_line_to_the_newest() -> None:
    script = ScriptDirectory(str(MIGRATIONS))
    assert [r.revision for r in script.walk_revisions()] == [f"{n:04d}" for n in range(13, 0, -1)]
    assert head_revision() == "0013"


def test_empty_to_head(empty: Database) -> None:
    assert current_revision(empty.engine) is None
    assert table_names(empty) == set()
    upgrade(empty.engine)
    assert current_revision(empty.engine) == head_revision()
    assert table_names(empty) == {t.name for t in Base.metadata.sorted_tables} | {"alembic_version"}
    require_current(empty.engine)  # does not raise


def test_the_migrated_schema_equals_the_models(empty: Database) -> None:
    upgrade(empty.engine)
    assert schema_diff(empty) == []


def test_the_models_differ_from_an_empty_database(empty: Database) -> None:
    """The comparison itself can fail: against nothing, every table is missing."""
    diff = schema_diff(empty)
    added = {d[1].name for d in diff if d[0] == "add_table"}
    assert added == {t.name for t in Base.metadata.sorted_tables}


def test_the_app_refuses_an_empty_database(empty: Database) -> None:
    with pytest.raises(SchemaBehind, match="yishi db upgrade"):
        App(Config(database_url=empty.url), db=empty)
    assert table_names(empty) == set()  # refusing created nothing


def test_the_app_starts_on_a_migrated_database(empty: Database) -> None:
    upgrade(empty.engine)
    app = App(Config(database_url=empty.url), db=empty)
    assert app.db is empty


def test_upgrading_twice_is_harmless(empty: Database) -> None:
    upgrade(empty.engine)
    with empty.transaction() as session:
        register.import_file(session, REGISTER.read_bytes(), START)
    before = snapshot(empty)
    upgrade(empty.engine)
    assert current_revision(empty.engine) == head_revision()
    assert snapshot(empty) == before
    assert len(before["people"]) == 20


def test_down_to_nothing_and_up_again(empty: Database) -> None:
    upgrade(empty.engine)
    cfg = alembic_config(empty.engine.url.render_as_string(hide_password=False))
    with empty.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert table_names(empty) <= {"alembic_version"}
    assert current_revision(empty.engine) is None
    with pytest.raises(SchemaBehind):
        require_current(empty.engine)
    upgrade(empty.engine)
    assert schema_diff(empty) == []


def snapshot(db: Database) -> dict[str, list[tuple]]:
    with db.transaction() as session:
        return {
            t.name: sorted(map(tuple, session.execute(sa.select(t)).all()), key=repr)
            for t in Base.metadata.sorted_tables
        }


def _legacy_chain(db: Database, community_id: int, n: int) -> str:
    """n rows appended as migration 0004's code did: one chain, each row hashing its id; the head."""
    prev = audit.GENESIS
    with db.engine.begin() as conn:
        for i in range(1, n + 1):
            row = {
                "id": i, "at": START, "community_id": community_id if i % 2 else None, "actor_id": None,
                "action": "legacy", "issue_id": None, "detail": {"n": i},
            }  # fmt: skip
            row |= {"prev_hash": prev, "hash": audit._digest(prev, row, audit._HASHED_FROZEN)}
            conn.execute(AuditLog.__table__.insert(), row)  # only the columns 0004 has
            prev = row["hash"]
        conn.execute(
            sa.text("UPDATE audit_head SET last_id = :n, hash = :h WHERE id = 1"), {"n": n, "h": prev}
        )
    return prev


def test_the_old_chain_is_frozen_and_every_new_chain_starts_from_its_head(empty: Database) -> None:
    upgrade(empty.engine, "0004")
    with empty.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO scopes (level, name, path, households) VALUES ('community', '梧桐社区', '梧桐社区', 0)"
            )
        )
        community = conn.execute(sa.text("SELECT id FROM scopes")).scalar_one()
    old_head = _legacy_chain(empty, community, 5)
    upgrade(empty.engine)
    assert schema_diff(empty) == []
    with empty.transaction() as session:
        found = {v.name: v for v in audit.verify(session)}
        assert (found[audit.FROZEN_CHAIN].rows, found[audit.FROZEN_CHAIN].broken) == (5, None)
        assert found[audit.FROZEN_CHAIN].head == audit.Head(5, old_head)  # the head printed before
        assert audit.head(session, community) == audit.Head(0, old_head)
        audit.append(session, at=START, action="after", community_id=community)
        audit.append(session, at=START, action="after", community_id=None)
    with empty.transaction() as session:
        new = session.scalars(select_after()).all()
        assert [(r.seq, r.prev_hash) for r in new] == [(1, old_head), (1, old_head)]
        assert all(v.broken is None for v in audit.verify(session))
        # the frozen rows still verify one by one: tampering with one is found
        session.execute(sa.update(AuditLog).where(AuditLog.id == 2).values(detail={"n": 99}))
        frozen = next(v for v in audit.verify(session) if v.name == audit.FROZEN_CHAIN)
        assert frozen.broken == 2
    # a community made after the upgrade gets a chain of its own (PostgreSQL: the ids go on from
    # the chains the migration made, not from 1)
    with empty.transaction() as session:
        later = Scope(level="community", name="银杏社区", path="银杏社区")
        session.add(later)
        session.flush()
        audit.append(session, at=START, action="after", community_id=later.id)
    with empty.transaction() as session:
        assert audit.head(session, later.id).seq == 1
        assert len({r.chain_id for r in session.scalars(select_after())}) == 3


def select_after():  # type: ignore[no-untyped-def]
    return sa.select(AuditLog).where(AuditLog.action == "after").order_by(AuditLog.id)


def test_a_downgrade_that_would_lose_audit_rows_is_refused(empty: Database) -> None:
    upgrade(empty.engine)
    with empty.transaction() as session:
        session.add(Scope(level="community", name="梧桐社区", path="梧桐社区"))
        session.flush()
        audit.append(session, at=START, action="new", community_id=None)
    cfg = alembic_config(empty.engine.url.render_as_string(hide_password=False))
    with pytest.raises(RuntimeError, match="would lose them"), empty.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
    assert current_revision(empty.engine) == head_revision()
