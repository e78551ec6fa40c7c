"""Statements of the busiest messages, run on the driver's cursor inside the session's transaction.

A ballot is four small statements. Through `Connection.execute`, SQLAlchemy's work around each
one (its cache key hashed and looked up, an execution context, a result object) costs more than
the SQL: a third of a ballot's time on SQLite. A `Prepared` statement is compiled once per
dialect by SQLAlchemy, and each run only converts the values with SQLAlchemy's own type
processors, sends the SQL, and converts the rows back. What the engine's listeners of
`before_cursor_execute` / `after_cursor_execute` see, and how a driver's error is raised
(`sqlalchemy.exc.DBAPIError`, the parameters hidden, a lost connection invalidated), stay as
`Connection.execute` has them.

An insert's Python-side column defaults (a constant, or a function of nothing such as `dict`)
are filled in as the execution context would; a statement that needs more of it (an expanding IN
list, a default taking the context, an `onupdate`) is refused when it is first compiled.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters in the order the driver takes them (positional)
    positional: bool
    binds: tuple[Processor, ...]
    defaults: tuple[tuple[str, Any], ...]  # (parameter, column default) of an insert's unnamed columns
    compiled: SQLCompiler
    row: Any  # a named tuple type for the columns, or None (no rows)
    results: tuple[Processor, ...]


def _plain(default: Any) -> bool:
    """A constant, or a function SQLAlchemy wrapped because it takes no context (`default=dict`)."""
    return default is not None and (
        default.is_scalar or (default.is_callable and hasattr(default.arg, "__wrapped__"))
    )


def _compile(statement: ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None) -> _Compiled:
    compiled = statement.compile(dialect=dialect, column_keys=list(column_keys or ()))
    assert isinstance(compiled, SQLCompiler)
    if any(b.expanding for b in compiled.binds.values()) or compiled.literal_execute_params:
        raise ValueError("a prepared statement cannot expand its parameters (IN lists)")
    if compiled.escaped_bind_names:
        raise ValueError("a prepared statement's parameters must be plain names")
    if compiled.update_prefetch or not all(_plain(c.default) for c in compiled.insert_prefetch):
        raise ValueError("a prepared statement takes only constant or argument-free Python column defaults")
    defaults = tuple((c.key, c.default) for c in compiled.insert_prefetch)
    names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(compiled.bind_names.values())
    binds = tuple(compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names)
    # the columns as SQLAlchemy itself reads them back: (key, name, objects, type), in order
    columns = compiled._result_columns
    row = namedtuple("Row", [c[0] for c in columns], rename=True) if columns else None  # type: ignore[misc]
    results = tuple(c[3].dialect_impl(dialect).result_processor(dialect, None) for c in columns)
    return _Compiled(
        compiled.string, names, bool(compiled.positional), binds, defaults, compiled, row, results
    )


def _connection(session: Session) -> Connection:
    """The session's connection, its pending changes flushed first, as `Session.execute` would."""
    if session.autoflush:
        session.flush()  # nothing to do, and cheap, when nothing is pending
    return session.connection()


class Prepared:
    """A Core statement run without `Connection.execute`'s bookkeeping (see the module)."""

    def __init__(self, statement: ClauseElement, column_keys: Sequence[str] | None = None) -> None:
        self.statement = statement
        self.column_keys = column_keys
        self._by_dialect: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._by_dialect.get(dialect.name)
        if compiled is None:
            compiled = self._by_dialect[dialect.name] = _compile(self.statement, dialect, self.column_keys)
        return compiled

    def rows(self, session: Session, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every row, each a named tuple of the statement's columns."""
        conn = _connection(session)
        c = self._for(conn.dialect)
        if c.row is None:
            raise TypeError("the statement returns no rows: use rowcount()")
        cursor = self._run(conn, c, params)
        try:
            raw = cursor.fetchall()
        finally:
            cursor.close()
        results, make = c.results, c.row._make
        return [make([v if p is None else p(v) for p, v in zip(results, r, strict=True)]) for r in raw]

    def first(self, session: Session, params: Mapping[str, Any] | None = None) -> Any:
        rows = self.rows(session, params)
        return rows[0] if rows else None

    def rowcount(self, session: Session, params: Mapping[str, Any] | None = None) -> int:
        """Run a statement that returns no rows: how many rows it changed."""
        conn = _connection(session)
        c = self._for(conn.dialect)
        cursor = self._run(conn, c, params)
        try:
            return cursor.rowcount
        finally:
            cursor.close()

    @staticmethod
    def _run(conn: Connection, c: _Compiled, params: Mapping[str, Any] | None) -> Any:
        values = c.compiled.construct_params(params)
        for name, default in c.defaults:
            if params is None or name not in params:
                values[name] = default.arg if default.is_scalar else default.arg(None)
        try:
            processed = [
                v if p is None else p(v) for p, v in zip(c.binds, (values[n] for n in c.names), strict=True)
            ]
        except Exception as exc:  # a value its column type refuses, wrapped as SQLAlchemy wraps it
            raise StatementError(
                str(exc), c.sql, None, exc, hide_parameters=conn.engine.hide_parameters
            ) from exc
        parameters: Any = tuple(processed) if c.positional else dict(zip(c.names, processed, strict=True))
        fairy = conn.connection
        cursor = fairy.cursor()
        listening = conn.dispatch.before_cursor_execute or conn.dispatch.after_cursor_execute
        try:
            if listening:
                conn.dispatch.before_cursor_execute(conn, cursor, c.sql, parameters, None, False)
            cursor.execute(c.sql, parameters)
            if listening:
                conn.dispatch.after_cursor_execute(conn, cursor, c.sql, parameters, None, False)
        except conn.dialect.loaded_dbapi.Error as exc:
            lost = conn.dialect.is_disconnect(exc, fairy.dbapi_connection, cursor)
            cursor.close()
            if lost:
                conn.invalidate(exc)
            raise DBAPIError.instance(
                c.sql, parameters, exc, conn.dialect.loaded_dbapi.Error,
                hide_parameters=conn.engine.hide_parameters, connection_invalidated=lost, dialect=conn.dialect,
            ) from exc  # fmt: skip
        return cursor
