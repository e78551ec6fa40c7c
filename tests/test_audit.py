"""The audit log: a chain per community (and one for rows of no community), each chained by
hash and appended at commit; `verify` names the first row of each chain that does not hold."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy import delete, select, update

from flows import audit
from storage.db import Database
from storage.models import AuditChain, AuditLog, Scope
from tests.conftest import START, empty_database


def communities(db: Database, *names: str) -> list[int]:
    with db.transaction() as session:
        made = [Scope(level="community", name=n, path=n) for n in names]
        session.add_all(made)
        session.flush()
        return [s.id for s in made]


@pytest.fixture
def two(db: Database) -> tuple[Database, int, int]:
    first, second = communities(db, "梧桐社区", "银杏社区")
    return db, first, second


def append_rows(db: Database, n: int, community_id: int | None) -> None:
    for i in range(n):
        with db.transaction() as session:
            audit.append(
                session,
                at=START + timedelta(minutes=i, microseconds=123),
                action="test",
                community_id=community_id,
                detail={"n": i, "text": "电梯停运", "float": 0.5, "list": [1, "二"]},
            )


def rows(db: Database, community_id: int | None) -> list[AuditLog]:
    with db.transaction() as session:
        query = select(AuditLog).order_by(AuditLog.seq)
        where = (
            AuditLog.community_id.is_(None) if community_id is None else AuditLog.community_id == community_id
        )
        return list(session.scalars(query.where(where)))


def verdicts(db: Database, community_id: int | None = None) -> dict[str, audit.Verdict]:
    with db.transaction() as session:
        return {v.name: v for v in audit.verify(session, community_id)}


def test_an_empty_log_holds(db: Database) -> None:
    found = verdicts(db)
    assert set(found) == {audit.FROZEN_CHAIN, audit.NO_COMMUNITY}
    assert all(v.broken is None and v.rows == 0 for v in found.values())
    (community,) = communities(db, "梧桐社区")
    with db.transaction() as session:
        assert audit.head(session, community) == audit.Head(0, audit.GENESIS)


def test_appends_chain_by_hash_in_the_communitys_own_chain(two: tuple[Database, int, int]) -> None:
    db, first, _ = two
    append_rows(db, 4, first)
    log = rows(db, first)
    assert [r.seq for r in log] == [1, 2, 3, 4]
    assert len({r.chain_id for r in log}) == 1
    assert log[0].prev_hash == audit.GENESIS  # the frozen chain's head: empty in a new database
    assert [r.prev_hash for r in log[1:]] == [r.hash for r in log[:-1]]
    # the hash covers the previous hash and the row's content, as flows/audit.py documents
    content = {
        "community_id": first,
        "seq": 1,
        "at": "2026-12-01T02:00:00+00:00",  # stored to the second
        "actor_id": None,
        "action": "test",
        "issue_id": None,
        "detail": {"n": 0, "text": "电梯停运", "float": 0.5, "list": [1, "二"]},
    }
    canonical = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert log[0].hash == hashlib.sha256((audit.GENESIS + canonical).encode()).hexdigest()
    with db.transaction() as session:
        assert audit.head(session, first) == audit.Head(4, log[-1].hash)


def test_each_community_and_no_community_have_chains_of_their_own(two: tuple[Database, int, int]) -> None:
    db, first, second = two
    append_rows(db, 3, first)
    append_rows(db, 2, second)
    append_rows(db, 1, None)
    append_rows(db, 1, first)
    assert [r.seq for r in rows(db, first)] == [1, 2, 3, 4]
    assert [r.seq for r in rows(db, second)] == [1, 2]
    assert [r.seq for r in rows(db, None)] == [1]
    found = verdicts(db)
    assert {name: (v.rows, v.broken) for name, v in found.items()} == {
        audit.FROZEN_CHAIN: (0, None),
        audit.NO_COMMUNITY: (1, None),
        "梧桐社区": (4, None),
        "银杏社区": (2, None),
    }
    assert set(verdicts(db, second)) == {"银杏社区"}


def test_a_row_appended_with_a_local_time_still_verifies(two: tuple[Database, int, int]) -> None:
    """The database keeps UTC: a caller's aware local time must hash as what is stored."""
    db, first, _ = two
    with db.transaction() as session:
        audit.append(
            session, at=START.astimezone(ZoneInfo("Asia/Shanghai")), action="test", community_id=first
        )
    append_rows(db, 1, first)
    assert rows(db, first)[0].at == START
    found = verdicts(db)["梧桐社区"]
    assert (found.rows, found.broken) == (2, None)


def test_rows_are_written_at_commit_and_not_before(two: tuple[Database, int, int]) -> None:
    """The append is the transaction's last write: nothing of it is in the table until commit."""
    db, first, _ = two
    with db.transaction() as session:
        audit.append(session, at=START, action="test", community_id=first)
        session.flush()
        assert session.scalar(select(sa.func.count(AuditLog.id))) == 0
    assert len(rows(db, first)) == 1


def test_a_savepoint_rolled_back_takes_its_rows_with_it(two: tuple[Database, int, int]) -> None:
    db, first, _ = two
    with db.transaction() as session:
        audit.append(session, at=START, action="kept", community_id=first)
        savepoint = session.begin_nested()
        audit.append(session, at=START, action="undone", community_id=first)
        inner = session.begin_nested()
        audit.append(session, at=START, action="undone too", community_id=first)
        inner.commit()
        savepoint.rollback()
        released = session.begin_nested()
        audit.append(session, at=START, action="kept too", community_id=first)
        released.commit()
    assert [r.action for r in rows(db, first)] == ["kept", "kept too"]
    with db.sessions() as session, session.begin():
        audit.append(session, at=START, action="rolled back", community_id=first)
        session.rollback()
    append_rows(db, 1, first)
    assert [r.action for r in rows(db, first)] == ["kept", "kept too", "test"]


def test_a_commit_with_a_savepoint_still_open_is_refused_and_writes_nothing(
    two: tuple[Database, int, int],
) -> None:
    """SQLAlchemy runs the commit hook while the savepoint is still open, so its rows would be
    dropped without a word: the unit of work refuses to commit that way."""
    db, first, _ = two
    with pytest.raises(RuntimeError, match="savepoint is still open"), db.transaction() as session:
        audit.append(session, at=START, action="outer", community_id=first)
        session.begin_nested()
        audit.append(session, at=START, action="inner", community_id=first)
    assert rows(db, first) == []
    append_rows(db, 1, first)  # nothing of the refused transaction is carried into the next
    assert [r.action for r in rows(db, first)] == ["test"]


def test_rows_lost_by_a_commit_past_the_hook_are_logged_and_not_carried_on(
    two: tuple[Database, int, int], caplog: pytest.LogCaptureFixture
) -> None:
    db, first, _ = two
    with db.sessions() as session:
        with session.begin():  # not the unit of work: its commit runs with the savepoint open
            audit.append(session, at=START, action="outer", community_id=first)
            session.begin_nested()
            audit.append(session, at=START, action="inner", community_id=first)
        assert "2 audit rows were not written" in caplog.text
        with session.begin():
            audit.append(session, at=START, action="next", community_id=first)
    assert [r.action for r in rows(db, first)] == ["next"]


def test_a_row_appended_before_the_transaction_began_is_rolled_back_with_it(
    two: tuple[Database, int, int],
) -> None:
    db, first, _ = two
    with db.sessions() as session:  # no transaction yet: the append begins one
        audit.append(session, at=START, action="rolled back", community_id=first)
        session.rollback()
        session.commit()
    assert rows(db, first) == []


def test_a_community_with_nothing_appended_yet_stands_at_the_frozen_head(
    two: tuple[Database, int, int],
) -> None:
    db, first, second = two
    append_rows(db, 1, first)
    found = verdicts(db, second)
    assert list(found) == ["银杏社区"]
    assert found["银杏社区"] == audit.Verdict("银杏社区", 0, audit.Head(0, audit.GENESIS))


def test_two_processes_appending_in_turn_keep_one_whole_chain(two: tuple[Database, int, int]) -> None:
    """Each process remembers the head it last wrote (SQLite): one that finds it moved by the other
    reads it again, and one whose own append was undone does not chain onto that."""
    db, first, _ = two
    other = Database(db.url)
    try:
        for _ in range(3):
            append_rows(db, 2, first)
            append_rows(other, 1, first)
        with pytest.raises(RuntimeError, match="undone"), db.transaction() as session:
            audit.append(session, at=START, action="undone", community_id=first)
            session.flush()
            audit._write(session)  # as at commit: the head advanced and remembered, then undone
            raise RuntimeError("undone")
        append_rows(db, 1, first)
        append_rows(other, 1, first)
    finally:
        other.dispose()
    found = verdicts(db)["梧桐社区"]
    assert (found.rows, found.broken) == (11, None)
    assert [r.seq for r in rows(db, first)] == list(range(1, 12))


def test_the_database_takes_only_a_row_that_continues_its_chain_and_makes_it_the_head(
    two: tuple[Database, int, int],
) -> None:
    """Whoever writes, not only Yishi: a row must follow its chain's head, and becomes it."""
    db, first, _ = two
    append_rows(db, 2, first)
    last = rows(db, first)[-1]
    row = {
        "chain_id": last.chain_id, "at": START, "community_id": first, "actor_id": None, "action": "x",
        "issue_id": None, "detail": {},
    }  # fmt: skip
    for wrong in ({"seq": 2, "prev_hash": last.prev_hash}, {"seq": 3, "prev_hash": "f" * 64}):
        with pytest.raises(sa.exc.IntegrityError, match="must continue its chain"), db.engine.begin() as conn:
            conn.execute(AuditLog.__table__.insert(), row | wrong | {"hash": "0" * 64})
    right = row | {"seq": 3, "prev_hash": last.hash}
    with db.engine.begin() as conn:
        conn.execute(AuditLog.__table__.insert(), right | {"hash": audit._digest(last.hash, right)})
    found = verdicts(db)["梧桐社区"]
    assert (found.rows, found.broken, found.head.seq) == (3, None, 3)


def test_a_changed_detail_names_that_row(two: tuple[Database, int, int]) -> None:
    db, first, second = two
    append_rows(db, 5, first)
    append_rows(db, 2, second)
    with db.transaction() as session:
        session.execute(
            update(AuditLog).where(AuditLog.community_id == first, AuditLog.seq == 3).values(detail={"n": 99})
        )
    found = verdicts(db)
    assert (found["梧桐社区"].broken, found["梧桐社区"].reason) == (3, "its content does not match its hash")
    assert found["银杏社区"].broken is None  # the other community's chain still holds


@pytest.mark.parametrize(
    "change",
    [
        {"action": "vote"},
        {"at": START + timedelta(days=1)},
        {"actor_id": None, "detail": {"n": 1, "text": "电梯停运", "float": 0.5, "list": [1, "二"], "x": 1}},
    ],
    ids=["action", "at", "detail-extra-key"],
)
def test_any_changed_content_names_that_row(two: tuple[Database, int, int], change: dict) -> None:
    db, first, _ = two
    append_rows(db, 3, first)
    with db.transaction() as session:
        session.execute(update(AuditLog).where(AuditLog.seq == 2).values(**change))
    assert verdicts(db)["梧桐社区"].broken == 2


def test_a_row_moved_to_another_communitys_chain_is_named(two: tuple[Database, int, int]) -> None:
    db, first, second = two
    append_rows(db, 2, first)
    with db.transaction() as session:
        session.execute(update(AuditLog).where(AuditLog.seq == 2).values(community_id=second))
    assert verdicts(db)["梧桐社区"].broken == 2


def test_a_forger_who_rehashes_the_row_breaks_the_next_link(two: tuple[Database, int, int]) -> None:
    db, first, _ = two
    append_rows(db, 4, first)
    with db.transaction() as session:
        row = session.scalar(select(AuditLog).where(AuditLog.seq == 2))
        assert row is not None
        row.detail = {"n": 99}
        row.hash = audit._digest(row.prev_hash, row)
    found = verdicts(db)["梧桐社区"]
    assert (found.broken, found.reason) == (3, "its link to the previous row does not match")


@pytest.mark.parametrize("deleted", [1, 3])
def test_a_deleted_row_is_named(two: tuple[Database, int, int], deleted: int) -> None:
    db, first, _ = two
    append_rows(db, 5, first)
    with db.transaction() as session:
        session.execute(delete(AuditLog).where(AuditLog.seq == deleted))
    found = verdicts(db)["梧桐社区"]
    assert (found.broken, found.reason) == (deleted, "a row is missing")


def test_a_deleted_last_row_is_named(two: tuple[Database, int, int]) -> None:
    db, first, _ = two
    append_rows(db, 5, first)
    with db.transaction() as session:
        session.execute(delete(AuditLog).where(AuditLog.seq == 5))
    found = verdicts(db)["梧桐社区"]
    assert (found.rows, found.broken, found.reason) == (4, 5, "rows after it are missing")


def test_an_emptied_chain_is_noticed(two: tuple[Database, int, int]) -> None:
    db, first, _ = two
    append_rows(db, 2, first)
    with db.transaction() as session:
        session.execute(delete(AuditLog))
    assert verdicts(db)["梧桐社区"].broken == 1


def test_appends_continue_the_chain_after_a_verify(two: tuple[Database, int, int]) -> None:
    db, first, _ = two
    append_rows(db, 2, first)
    assert verdicts(db)["梧桐社区"].broken is None
    append_rows(db, 2, first)
    log = rows(db, first)
    assert [r.seq for r in log] == [1, 2, 3, 4] and log[2].prev_hash == log[1].hash
    assert verdicts(db)["梧桐社区"].rows == 4


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Database]:
    database = Database(postgres_url)
    empty_database(database)
    yield database
    database.dispose()


def _hold_chain(session: sa.orm.Session, community_id: int) -> None:
    """What a commit does while it appends: the community's head row locked."""
    session.execute(
        select(AuditChain.id).where(AuditChain.community_id == community_id).with_for_update(key_share=True)
    ).one()


def test_appends_to_one_chain_are_serialised_by_its_head_row_and_only_its_own(pg: Database) -> None:
    first, second = communities(pg, "梧桐社区", "银杏社区")
    append_rows(pg, 1, first)
    append_rows(pg, 1, second)
    with pg.transaction() as holder:
        _hold_chain(holder, first)
        with pg.sessions() as other, other.begin():  # the same chain waits
            other.execute(sa.text("SET LOCAL lock_timeout = '100ms'"))
            audit.append(other, at=START, action="waits", community_id=first)
            with pytest.raises(sa.exc.OperationalError, match="lock"):
                other.commit()
        append_rows(pg, 1, second)  # another community's does not
        append_rows(pg, 1, None)
    assert [r.action for r in rows(pg, first)] == ["test"]
    assert len(rows(pg, second)) == 2


def test_a_large_fan_out_holds_no_chain_lock_while_it_writes(pg: Database) -> None:
    """A transaction that has appended and is still writing (a vote's 3,000 notifications) has
    not taken its chain's lock: appends in its own community and in others commit meanwhile."""
    first, second = communities(pg, "梧桐社区", "银杏社区")
    append_rows(pg, 1, first)
    with pg.transaction() as busy:
        audit.append(busy, at=START, action="vote opened", community_id=first)
        busy.execute(sa.text("SELECT pg_sleep(0)"))  # still writing …
        done = threading.Event()

        def others() -> None:
            with pg.sessions() as session, session.begin():
                session.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
                audit.append(session, at=START, action="ballot", community_id=first)
                audit.append(session, at=START, action="elsewhere", community_id=second)
            done.set()

        thread = threading.Thread(target=others)
        thread.start()
        thread.join(10)
        assert done.is_set()
    assert [r.action for r in rows(pg, first)] == ["test", "ballot", "vote opened"]
    assert verdicts(pg)["梧桐社区"].broken is None
