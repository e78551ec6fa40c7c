"""`storage.prepared.Prepared` gives what `Connection.execute` gives: the same values in and out
(aware UTC datetimes, JSON, booleans), an insert's Python-side defaults, the engine's listeners,
SQLAlchemy's errors with the parameters hidden, and the session's pending changes flushed first;
on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from flows import outbox
from storage.db import Database
from storage.models import Account, Outbox, Person, Setting
from storage.prepared import Prepared

AT = datetime(2026, 12, 3, 8, 30, 15, 123456, tzinfo=UTC)
_QUEUED = Prepared(Outbox.__table__.insert())
_READ = Prepared(
    select(
        Outbox.id, Outbox.msgid, Outbox.params, Outbox.next_attempt_at, Outbox.live, Outbox.attempts
    ).where(Outbox.msgid == bindparam("msgid"))
)


def _row(session: Session, msgid: str, at: datetime, **params: object) -> dict:
    person = session.scalar(select(Person.id).limit(1))
    return {"person_id": person, "msgid": msgid, "params": params, "created_at": AT, "next_attempt_at": at}


def test_values_go_in_and_come_out_as_connection_execute_has_them(community: Database) -> None:
    # a time given in another zone is stored as UTC and read back aware
    with community.transaction() as session:
        row = _row(session, "m", AT.astimezone(timezone(timedelta(hours=8))), 题="电梯", n=[1, 2])
        assert _QUEUED.rowcount(session, row) == 1
        mine = _READ.first(session, {"msgid": "m"})
        theirs = session.connection().execute(_READ.statement, {"msgid": "m"}).one()
    assert tuple(mine) == tuple(theirs)
    assert mine.next_attempt_at == AT and mine.next_attempt_at.tzinfo is not None
    assert mine.params == {"题": "电梯", "n": [1, 2]}
    # the columns left out got their Python-side defaults, as the ORM would have given them
    assert mine.live is False and mine.attempts == 0
    with community.transaction() as session:
        assert _READ.first(session, {"msgid": "nothing"}) is None


def test_a_naive_time_is_refused_as_the_column_type_refuses_it(community: Database) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), community.transaction() as session:
        _QUEUED.rowcount(session, _row(session, "m", AT.replace(tzinfo=None)))


def test_the_engines_listeners_see_each_statement(community: Database) -> None:
    seen: list[tuple[str, str]] = []
    before = lambda conn, cursor, statement, *rest: seen.append(("before", statement))  # noqa: E731
    after = lambda conn, cursor, statement, *rest: seen.append(("after", statement))  # noqa: E731
    sa.event.listen(community.engine, "before_cursor_execute", before)
    sa.event.listen(community.engine, "after_cursor_execute", after)
    try:
        with community.transaction() as session:
            row = _row(session, "m", AT)
            seen.clear()
            _QUEUED.rowcount(session, row)
    finally:
        sa.event.remove(community.engine, "before_cursor_execute", before)
        sa.event.remove(community.engine, "after_cursor_execute", after)
    assert [when for when, _ in seen] == ["before", "after"]
    assert seen[0][1].lstrip().upper().startswith("INSERT INTO OUTBOX")


def test_a_column_left_out_gets_its_python_default_a_function_called_afresh(community: Database) -> None:
    with community.transaction() as session:
        row = _row(session, "m", AT)
        del row["params"]  # `default=dict`: a new dict for each row
        assert _QUEUED.rowcount(session, row) == 1
        assert _QUEUED.rowcount(session, row | {"msgid": "m2"}) == 1
        assert [r.params for r in _READ.rows(session, {"msgid": "m"})] == [{}]


def test_a_statement_that_changes_nothing_counts_none(community: Database) -> None:
    """`notify` says False for a person without a chat account: its INSERT … SELECT inserts nothing."""
    with community.transaction() as session:
        nobody = session.scalar(
            select(Person.id)
            .where(~Person.id.in_(select(Account.person_id).where(Account.person_id.is_not(None))))
            .limit(1)
        )
        assert nobody is not None
        assert outbox.notify(session, nobody, AT, "m") is False
        assert _READ.rows(session, {"msgid": "m"}) == []


def test_a_drivers_error_is_sqlalchemys_with_its_parameters_hidden(community: Database) -> None:
    insert = Prepared(Setting.__table__.insert())
    row = {"community_id": 1, "key": "quorum", "value": "secret-value"}
    with community.transaction() as session:
        insert.rowcount(session, row)
    with pytest.raises(sa.exc.IntegrityError) as caught, community.transaction() as session:
        insert.rowcount(session, row)
    assert "secret-value" not in str(caught.value)
    with community.transaction() as session:  # nothing half-done is left behind
        assert (
            session.scalar(select(sa.func.count()).select_from(Setting).where(Setting.key == "quorum")) == 1
        )


def test_what_it_cannot_do_as_the_execution_context_would_is_refused_at_once(community: Database) -> None:
    expanding = Prepared(
        select(Setting.key).where(Setting.community_id.in_(bindparam("ids", expanding=True)))
    )
    with community.transaction() as session:
        with pytest.raises(ValueError, match="IN lists"):
            expanding.rows(session, {"ids": [1, 2]})
        with pytest.raises(sa.exc.StatementError, match="value is required"):
            _READ.rows(session, {})


def test_what_the_session_holds_unwritten_is_flushed_first_as_session_execute_would(
    community: Database,
) -> None:
    read = Prepared(select(Setting.value).where(Setting.key == bindparam("key")))
    with community.transaction() as session:
        session.add(Setting(community_id=1, key="quorum", value=">=2/3"))
        assert [tuple(r) for r in read.rows(session, {"key": "quorum"})] == [(">=2/3",)]


def test_a_connection_the_server_dropped_is_said_lost_and_the_pools_others_with_it(postgres_url: str) -> None:
    """What the dispatcher needs to handle the message once more on a new connection: after a
    restart every pooled connection is dead, and the next transaction must not be given one."""
    db = Database(postgres_url)
    read = Prepared(select(Setting.value).where(Setting.key == bindparam("key")))
    try:
        with db.engine.connect() as one, db.engine.connect() as two:  # two connections in the pool
            pids = [c.exec_driver_sql("SELECT pg_backend_pid()").scalar() for c in (one, two)]
        other = sa.create_engine(db.engine.url)
        with other.connect() as conn:
            for pid in pids:
                conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
        other.dispose()
        with pytest.raises(sa.exc.DBAPIError) as caught, db.transaction() as session:
            read.rows(session, {"key": "no such key"})
        assert caught.value.connection_invalidated
        with db.transaction() as session:  # neither dead connection is handed out again
            assert read.rows(session, {"key": "no such key"}) == []
    finally:
        db.dispose()
