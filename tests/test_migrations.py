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
from flows import register
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
from storage.models import Base
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
    assert [r.revision for r in script.walk_revisions()] == ["0004", "0003", "0002", "0001"]
    assert head_revision() == "0004"


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
