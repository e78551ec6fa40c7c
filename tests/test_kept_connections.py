"""A thread keeps its connection between transactions (`Database.transaction`): the pool is not
gone through for every message, a thread that ended gives its connection back, a transaction
inside another gets its own, and after a connection is lost no thread is left with a dead one."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy import bindparam, select

from flows import schedule
from storage.db import HELD, Database
from storage.models import DueWork, Setting
from storage.prepared import Prepared
from tests.conftest import START

_READ = Prepared(select(Setting.value).where(Setting.key == bindparam("key")))


def checkouts(db: Database) -> list[int]:
    """A list that grows by one with each connection taken from the pool."""
    taken: list[int] = []
    sa.event.listen(db.engine, "checkout", lambda *_: taken.append(1))
    return taken


def read(db: Database) -> None:
    with db.transaction() as session:
        _READ.rows(session, {"key": "nothing"})


def in_thread(work: Callable[[], object]) -> None:
    failed: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # said in the test's thread
            failed.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]


def test_one_threads_transactions_take_one_connection_from_the_pool(db: Database) -> None:
    taken = checkouts(db)
    for _ in range(20):
        read(db)
    assert len(taken) == 1
    assert db.engine.pool.checkedout() == 1


def test_a_failed_transaction_keeps_the_connection_usable(db: Database) -> None:
    with pytest.raises(ZeroDivisionError), db.transaction() as session:
        _READ.rows(session, {"key": "nothing"})
        1 / 0  # noqa: B018
    with db.transaction() as session:
        assert _READ.rows(session, {"key": "nothing"}) == []


def test_a_thread_that_ended_gives_its_connection_back(db: Database) -> None:
    for _ in range(HELD + 3):  # more threads, one after another, than may keep a connection
        in_thread(lambda: read(db))
    # the last one took the place of those before it, which went back to the pool
    assert db.engine.pool.checkedout() == 1


def test_threads_beyond_those_that_keep_one_use_the_pool(db: Database) -> None:
    started, go = threading.Barrier(HELD + 4), threading.Event()  # the threads and this one

    def work() -> None:
        read(db)  # every thread alive at once
        started.wait(timeout=10)
        go.wait(timeout=10)
        read(db)

    threads = [threading.Thread(target=work) for _ in range(HELD + 3)]
    for thread in threads:
        thread.start()
    started.wait(timeout=10)
    assert db.engine.pool.checkedout() == HELD  # the others' connections went back after each transaction
    go.set()
    for thread in threads:
        thread.join()
    db.dispose()
    assert db.engine.pool.checkedout() == 0


def test_a_transaction_inside_another_has_a_connection_of_its_own(postgres_url: str) -> None:
    """(PostgreSQL: on SQLite the inner one would wait for the outer's write lock.)"""
    db = Database(postgres_url)
    keys = DueWork.key.in_(["test:outer", "test:inner"])
    try:
        with pytest.raises(ZeroDivisionError), db.transaction() as outer:
            schedule.at(outer, "test", 1, START, key="test:outer")
            with db.transaction() as inner:
                assert inner.connection() is not outer.connection()
                schedule.at(inner, "test", 2, START, key="test:inner")
            1 / 0  # noqa: B018
        with db.transaction() as session:
            assert session.scalars(select(DueWork.key).where(keys)).all() == ["test:inner"]
    finally:
        with db.transaction() as session:
            session.execute(sa.delete(DueWork).where(keys))
        db.dispose()


def test_after_a_lost_connection_no_thread_keeps_a_dead_one(postgres_url: str) -> None:
    """The server dropped every connection (a restart): the thread that finds out first fails once
    (the dispatcher handles its message again); the other threads' kept connections are not used again."""
    db = Database(postgres_url)
    try:
        ready, go = threading.Barrier(3), threading.Event()
        failures: list[BaseException] = []

        def other() -> None:
            read(db)  # it keeps a connection
            ready.wait(timeout=10)
            go.wait(timeout=10)
            try:
                read(db)
            except BaseException as exc:  # said in the test's thread
                failures.append(exc)

        threads = [threading.Thread(target=other) for _ in range(2)]
        for thread in threads:
            thread.start()
        read(db)
        ready.wait(timeout=10)
        with db.engine.connect() as conn:  # every backend of this database but the one asking
            pids = conn.exec_driver_sql(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).scalars()
            for pid in list(pids):
                conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
        with pytest.raises(sa.exc.DBAPIError) as caught:
            read(db)
        assert caught.value.connection_invalidated
        go.set()
        for thread in threads:
            thread.join()
        assert failures == []
        read(db)
    finally:
        db.dispose()
