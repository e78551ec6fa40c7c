"""Two statements that hold under concurrency on both databases.

SQLite takes its one write lock at `BEGIN IMMEDIATE`, so its writers never overlap; these
matter on PostgreSQL, where transactions run side by side under READ COMMITTED.
"""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Select, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.prepared import Prepared

T = TypeVar("T", bound=tuple[Any, ...])


@cache
def _insert_new(dialect: str, table: Table, keys: tuple[str, ...]) -> Prepared:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return Prepared(insert(table).on_conflict_do_nothing(index_elements=list(keys)))


def insert_new(session: Session, table: Table, row: dict, keys: tuple[str, ...]) -> int:
    """`INSERT … ON CONFLICT (keys) DO NOTHING`: a row whose key exists is left alone, so two
    transactions inserting the same key never end in an IntegrityError (on PostgreSQL the second
    waits for the first to commit, then inserts nothing). 1 if the row was inserted, else 0."""
    dialect = session.get_bind().dialect.name
    return _insert_new(dialect, table, keys).rowcount(session, row)


def one_writer(session: Session) -> bool:
    """Whether the database lets one transaction write at a time: SQLite, which takes its write
    lock at `BEGIN IMMEDIATE`. There, what a transaction has read cannot change before it commits,
    so a row need not be locked and read again to be sure of it."""
    return session.get_bind().dialect.name == "sqlite"


def locked(query: Select[T], of: Any = None) -> Select[T]:
    """The rows of `query`, locked until the end of the transaction (`FOR NO KEY UPDATE`) and read
    as they are now: a transaction that wants the same rows waits for this one to end, then sees
    what it wrote. NO KEY: inserting rows that refer to the locked one (a support of a locked
    issue) does not wait. `of`: the table whose rows are locked, where others are joined in."""
    return query.with_for_update(key_share=True, of=of).execution_options(populate_existing=True)
