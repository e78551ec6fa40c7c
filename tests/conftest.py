"""Fixtures: every database test runs on SQLite and on the PostgreSQL at 127.0.0.1:5432.

PostgreSQL gets a database of its own for the session, migrated once, emptied between
tests. Where it cannot be reached the PostgreSQL half fails on CI (CI=true) and is
skipped elsewhere, saying why.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from flows import audit, register, textsense
from storage.db import Database
from storage.migrate import upgrade
from storage.models import AuditChain, Base
from tests.harness import REGISTER, TestBot

PG_ADMIN_URL = os.environ.get("YISHI_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
START = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai


def pytest_configure(config: pytest.Config) -> None:
    textsense.warm_up()  # jieba once, before any test measures or draws examples


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db.engine)
    db.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    name = f"yishi_test_{os.getpid()}"
    try:
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.OperationalError as exc:
        reason = f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc.orig}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    db = Database(url)
    upgrade(db.engine)
    db.dispose()
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


def empty_database(db: Database) -> None:
    """Every table of a PostgreSQL test database emptied, the two chains the migration makes made again."""
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
        conn.execute(
            AuditChain.__table__.insert(),
            [
                {"id": 1, "kind": "frozen", "seq": 0, "hash": audit.GENESIS, "origin": audit.GENESIS},
                {"id": 2, "kind": "none", "seq": 0, "hash": audit.GENESIS, "origin": audit.GENESIS},
            ],
        )
        conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('audit_chains', 'id'), 3, false)")


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty database at the newest migration."""
    if request.param == "sqlite":
        path = tmp_path / "yishi.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        database = Database(f"sqlite:///{path}")
    else:
        database = Database(request.getfixturevalue("postgres_url"))
        empty_database(database)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(sqlite_template: Path, tmp_path: Path) -> Iterator[Database]:
    """For tests of what does not differ between databases (the console, the CLI)."""
    path = tmp_path / "yishi.db"
    shutil.copy(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()


@pytest.fixture
def community(db: Database) -> Database:
    """The test register (tests/data/register.csv) imported."""
    with db.transaction() as session:
        register.import_file(session, REGISTER.read_bytes(), START)
    return db


@pytest.fixture
def bot(community: Database) -> TestBot:
    return TestBot(community, START)


@pytest.fixture
def bot_en(community: Database) -> TestBot:
    return TestBot(community, START, locale="en")
