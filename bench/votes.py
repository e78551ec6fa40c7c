"""Votes through the dispatcher: 2,000 residents (and 200 repeated attempts) on SQLite in one
process, and on PostgreSQL with 4 concurrent workers, checking exactly 2,000 ballots are stored."""

from __future__ import annotations

import os
import random
import time
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from sqlalchemy import func, select

from bench.common import KEY, NOW, Result, fresh_sqlite, register_csv
from flows import register
from flows.clock import FixedClock
from flows.messages import Incoming
from handlers.dispatch import Dispatcher
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Account, Ballot, Person

PG_ADMIN = os.environ.get("YISHI_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _prepare(db: Database) -> tuple[Dispatcher, list[str]]:
    """2,000 residents (one a household) in one building's grid, an issue in discussion, an open poll."""
    with db.transaction() as session:
        register.import_file(session, register_csv(buildings=1, rooms=2000), NOW)
        people = session.scalars(select(Person).order_by(Person.id)).all()
        for p in people:
            session.add(Account(channel="bench", external_id=str(p.id), person_id=p.id, created_at=NOW))
        residents = [str(p.id) for p in people if p.household_id is not None]
        chief = next(str(p.id) for p in people if p.household_id is None)
    dispatcher = Dispatcher(db, FixedClock(NOW), KEY)
    say = lambda who, text: dispatcher.handle(Incoming("bench", who, who, text=text))  # noqa: E731
    for line in ("/raise", "加装电梯", "老人上下楼困难。", "1", "yes"):
        say(residents[0], line)
    for who in residents[1:300]:
        say(who, "/support 1")
    for line in ("/openvote 1", "1", "7d", "1", "2", "1"):
        say(chief, line)
    return dispatcher, residents


def _attempts(residents: list[str]) -> list[tuple[str, str]]:
    rng = random.Random(3)
    attempts = [(who, f"/vote 1 {rng.randint(1, 3)}") for who in residents]
    attempts += [(who, f"/vote 1 {rng.randint(1, 3)}") for who in rng.sample(residents, 200)]
    rng.shuffle(attempts)
    return attempts


def sqlite() -> Result:
    db = fresh_sqlite("votes")
    dispatcher, residents = _prepare(db)
    attempts = _attempts(residents)
    start = time.perf_counter()
    for who, text in attempts:
        dispatcher.handle(Incoming("bench", who, who, text=text))
    elapsed = time.perf_counter() - start
    with db.transaction() as session:
        stored = session.scalar(select(func.count(Ballot.id)))
    db.dispose()
    return Result(
        "votes, SQLite, one process",
        len(attempts) / elapsed,
        "votes/s",
        3000,
        True,
        f"{stored} ballots stored",
    )


def postgres() -> Result | None:
    name = f"yishi_bench_{os.getpid()}"
    try:
        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.OperationalError:
        return None
    db = Database(PG_ADMIN.rsplit("/", 1)[0] + "/" + name)
    try:
        upgrade(db.engine)
        dispatcher, residents = _prepare(db)
        attempts = _attempts(residents)
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda a: dispatcher.handle(Incoming("bench", a[0], a[0], text=a[1])), attempts))
        elapsed = time.perf_counter() - start
        with db.transaction() as session:
            stored = session.scalar(select(func.count(Ballot.id)))
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()
    note = f"{stored} ballots stored" + ("" if stored == len(residents) else f" (expected {len(residents)})")
    return Result("votes, PostgreSQL, 4 workers", len(attempts) / elapsed, "votes/s", None, True, note)
