"""Alembic, driven from code: `yishi db upgrade`, and the start-up check that refuses an old schema."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaBehind(RuntimeError):
    """The database is not at the newest migration; `yishi db upgrade` fixes it."""

    def __init__(self, current: str | None, head: str | None) -> None:
        super().__init__(
            f"the database is at migration {current or 'none'}, the code needs {head}: run `yishi db upgrade`"
        )
        self.current, self.head = current or "-", head or "-"


class NoDatabase(SchemaBehind):
    """The SQLite file does not exist: said as such, and not created by asking."""

    def __init__(self, path: Path, head: str | None) -> None:
        super().__init__(None, head)
        self.path = path


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def require_current(engine: Engine) -> None:
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database)
        if not path.exists():  # connecting would leave an empty file behind
            raise NoDatabase(path.resolve(), head_revision())
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaBehind(current, head)
