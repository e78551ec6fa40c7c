"""The audit log: appends chain by hash; `verify` names the first row that does not hold."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy import delete, select, update

from flows import audit
from storage.db import Database
from storage.models import AuditHead, AuditLog
from tests.conftest import START, empty_database


def append_rows(db: Database, n: int) -> None:
    for i in range(n):
        with db.transaction() as session:
            audit.append(
                session,
                at=START + timedelta(minutes=i, microseconds=123),
                action="test",
                community_id=None,
                detail={"n": i, "text": "电梯停运", "float": 0.5, "list": [1, "二"]},
            )


def rows(db: Database) -> list[AuditLog]:
    with db.transaction() as session:
        return list(session.scalars(select(AuditLog).order_by(AuditLog.id)))


def verify(db: Database) -> audit.Verdict:
    with db.transaction() as session:
        return audit.verify(session)


def test_an_empty_log_holds(db: Database) -> None:
    assert verify(db) == audit.Verdict(0, None)
    with db.transaction() as session:
        assert audit.head_hash(session) == audit.GENESIS


def test_appends_chain_by_hash(db: Database) -> None:
    append_rows(db, 4)
    log = rows(db)
    assert [r.id for r in log] == [1, 2, 3, 4]
    assert log[0].prev_hash == audit.GENESIS
    assert [r.prev_hash for r in log[1:]] == [r.hash for r in log[:-1]]
    assert len({r.hash for r in log}) == 4
    # the hash covers the previous hash and the row's content, as flows/audit.py documents
    first = log[0]
    content = {
        "id": 1,
        "at": "2026-12-01T02:00:00+00:00",  # stored to the second
        "community_id": None,
        "actor_id": None,
        "action": "test",
        "issue_id": None,
        "detail": {"n": 0, "text": "电梯停运", "float": 0.5, "list": [1, "二"]},
    }
    canonical = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert first.hash == hashlib.sha256((audit.GENESIS + canonical).encode()).hexdigest()
    with db.transaction() as session:
        head = session.get(AuditHead, 1)
        assert head is not None and (head.last_id, head.hash) == (4, log[-1].hash)
        assert audit.head_hash(session) == log[-1].hash


def test_an_untouched_log_holds(db: Database) -> None:
    append_rows(db, 5)
    assert verify(db) == audit.Verdict(5, None)


def test_a_row_appended_with_a_local_time_still_verifies(db: Database) -> None:
    """The database keeps UTC: a caller's aware local time must hash as what is stored."""
    shanghai = START.astimezone(ZoneInfo("Asia/Shanghai"))
    with db.transaction() as session:
        audit.append(session, at=shanghai, action="test", community_id=None)
    append_rows(db, 1)
    assert rows(db)[0].at == START
    assert verify(db) == audit.Verdict(2, None)


def test_a_changed_detail_names_that_row(db: Database) -> None:
    append_rows(db, 5)
    with db.transaction() as session:
        session.execute(update(AuditLog).where(AuditLog.id == 3).values(detail={"n": 99}))
    verdict = verify(db)
    assert (verdict.broken_id, verdict.reason) == (3, "its content does not match its hash")


@pytest.mark.parametrize(
    "change",
    [
        {"action": "vote"},
        {"at": START + timedelta(days=1)},
        {"actor_id": None, "detail": {"n": 1, "text": "电梯停运", "float": 0.5, "list": [1, "二"], "x": 1}},
    ],
    ids=["action", "at", "detail-extra-key"],
)
def test_any_changed_content_names_that_row(db: Database, change: dict) -> None:
    append_rows(db, 3)
    with db.transaction() as session:
        session.execute(update(AuditLog).where(AuditLog.id == 2).values(**change))
    assert verify(db).broken_id == 2


def test_a_forger_who_rehashes_the_row_breaks_the_next_link(db: Database) -> None:
    append_rows(db, 4)
    with db.transaction() as session:
        row = session.get(AuditLog, 2)
        assert row is not None
        row.detail = {"n": 99}
        row.hash = audit._digest(row.prev_hash, row)
    verdict = verify(db)
    assert (verdict.broken_id, verdict.reason) == (3, "its link to the previous row does not match")


@pytest.mark.parametrize("deleted", [1, 3])
def test_a_deleted_row_is_named(db: Database, deleted: int) -> None:
    append_rows(db, 5)
    with db.transaction() as session:
        session.execute(delete(AuditLog).where(AuditLog.id == deleted))
    verdict = verify(db)
    assert (verdict.broken_id, verdict.reason) == (deleted, "a row is missing")


def test_a_deleted_last_row_is_named(db: Database) -> None:
    append_rows(db, 5)
    with db.transaction() as session:
        session.execute(delete(AuditLog).where(AuditLog.id == 5))
    verdict = verify(db)
    assert (verdict.rows, verdict.broken_id, verdict.reason) == (4, 5, "rows after it are missing")


def test_an_emptied_log_is_noticed(db: Database) -> None:
    append_rows(db, 2)
    with db.transaction() as session:
        session.execute(delete(AuditLog))
    assert verify(db).broken_id == 1


def test_appends_continue_the_chain_after_a_verify(db: Database) -> None:
    append_rows(db, 2)
    assert verify(db).broken_id is None
    append_rows(db, 2)
    log = rows(db)
    assert [r.id for r in log] == [1, 2, 3, 4] and log[2].prev_hash == log[1].hash
    assert verify(db) == audit.Verdict(4, None)


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Database]:
    database = Database(postgres_url)
    empty_database(database)
    yield database
    database.dispose()


def test_appends_are_serialised_by_the_head_row(pg: Database) -> None:
    """While one transaction appends, another cannot: it waits on the head row's lock."""
    append_rows(pg, 1)
    with pg.transaction() as first:
        audit.append(first, at=START, action="first", community_id=None)
        first.flush()
        with pg.sessions() as second, second.begin():
            second.execute(sa.text("SET LOCAL lock_timeout = '50ms'"))
            with pytest.raises(sa.exc.OperationalError, match="lock"):
                audit.append(second, at=START, action="second", community_id=None)
    append_rows(pg, 1)
    assert [r.action for r in rows(pg)] == ["test", "first", "test"]
    assert verify(pg) == audit.Verdict(3, None)
