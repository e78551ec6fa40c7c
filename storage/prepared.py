"""Statements of the busiest messages, run on the driver's cursor inside the session's transaction.

A ballot is four small statements. Through `Connection.execute`, SQLAlchemy's work around each
one (its cache key hashed and looked up, an execution context, a result object) costs more than
the SQL: a third of a ballot's time on SQLite. A `Prepared` statement is compiled once per
dialect by SQLAlchemy, and each run only converts the values with SQLAlchemy's own type
processors, sends the SQL, and converts the rows back. What the engine's listeners of
`before_cursor_execute` / `after_cursor_execute` see (without an execution context; a listener's
returned statement is not used), and how an error is raised and handled (SQLAlchemy's own
handler: `DBAPIError` with the parameters hidden, a lost connection and the pool's older ones
invalidated), stay as `Connection.execute` has them. An insert names the columns its values
give, as `Connection.execute` would: a statement is compiled once for each dialect, driver and
set of parameter names.

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


def _compile(statement: ClauseElement, dialect: Dialect, column_keys: Sequence[str]) -> _Compiled:
    compiled = statement.compile(dialect=dialect, column_keys=list(column_keys))
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
    row = namedtuple("Row", [c[0] for c in columns]) if columns else None  # type: ignore[misc]
    results = tuple(c[3].dialect_impl(dialect).result_processor(dialect, None) for c in columns)
    return _Compiled(
        compiled.string, names, bool(compiled.positional), binds, defaults, compiled, row, results
    )


def _connection(session: Session) -> Connection:
    """The session's connection, its pending changes flushed first (as `Session.execute` does
    before an ORM query): what the statement reads, or refers to, is written."""
    if session.autoflush:
        session.flush()  # nothing to do, and cheap, when nothing is pending
    return session.connection()


class Prepared:
    """A Core statement run without `Connection.execute`'s bookkeeping (see the module)."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, str, tuple[str, ...]], _Compiled] = {}

    def _for(self, dialect: Dialect, names: tuple[str, ...]) -> _Compiled:
        key = (dialect.name, dialect.driver, names)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _compile(self.statement, dialect, names)
        return compiled

    def rows(self, session: Session, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every row, each a named tuple of the statement's columns."""
        return self._execute(session, params, fetch=True)

    def first(self, session: Session, params: Mapping[str, Any] | None = None) -> Any:
        """The first row, or None (for statements of one row)."""
        rows = self.rows(session, params)
        return rows[0] if rows else None

    def rowcount(self, session: Session, params: Mapping[str, Any] | None = None) -> int:
        """How many rows the statement changed (what it returns, if anything, is not read)."""
        return self._execute(session, params, fetch=False)

    def _execute(self, session: Session, params: Mapping[str, Any] | None, fetch: bool) -> Any:
        conn = _connection(session)
        c = self._for(conn.dialect, tuple(params or ()))
        if fetch and c.row is None:
            raise TypeError("the statement returns no rows: use rowcount()")
        parameters: Any = None
        cursor = None
        try:
            values = c.compiled.construct_params(params)
            for name, default in c.defaults:
                values[name] = default.arg if default.is_scalar else default.arg(None)
            processed = [
                v if p is None else p(v) for p, v in zip(c.binds, (values[n] for n in c.names), strict=True)
            ]
            parameters = tuple(processed) if c.positional else dict(zip(c.names, processed, strict=True))
            cursor = conn.connection.cursor()
            listening = conn.dispatch.before_cursor_execute or conn.dispatch.after_cursor_execute
            if listening:
                conn.dispatch.before_cursor_execute(conn, cursor, c.sql, parameters, None, False)
            cursor.execute(c.sql, parameters)
            if listening:
                conn.dispatch.after_cursor_execute(conn, cursor, c.sql, parameters, None, False)
            if not fetch:
                count = cursor.rowcount
                cursor.close()
                return count
            raw = cursor.fetchall()
            cursor.close()
        except BaseException as exc:  # wrapped, logged and a lost connection handled as SQLAlchemy does
            conn._handle_dbapi_exception(exc, c.sql, parameters, cursor, None)
        results, make = c.results, c.row._make
        return [make([v if p is None else p(v) for p, v in zip(results, r, strict=True)]) for r in raw]
