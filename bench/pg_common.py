"""Shared set-up for the PostgreSQL benchmarks: a database of their own (dropped afterwards, also
on failure), a register of several communities, a chat account per person, and issues brought
to a vote through the dispatcher."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy import func, select

from bench.common import NOW
from bench.votes import PG_ADMIN
from flows import register
from flows.messages import Incoming
from handlers.dispatch import Dispatcher
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Account, Issue, Person, Poll

CHANNEL = "bench"
OPEN_VOTE = ("1", "7d", "1", "2", "1")  # approve, 7 days, open (not secret), one vote a person, confirm


@contextmanager
def scratch_database(tag: str) -> Iterator[Database | None]:
    """A fresh, migrated database `yishi_bench_<tag>_<pid>`, dropped when the block ends (whatever
    happens in it); None when PostgreSQL is not reachable."""
    name = f"yishi_bench_{tag}_{os.getpid()}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.OperationalError:
        admin.dispose()
        yield None
        return
    db = Database(PG_ADMIN.rsplit("/", 1)[0] + "/" + name)
    try:
        upgrade(db.engine)
        yield db
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def communities_csv(households: list[int]) -> bytes:
    """One community per entry, named 社区0, 社区1 …: one building of that many households (one
    resident each), then one committee member. Rows go community by community, so each
    community's people (and households) get consecutive ids on import."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(register.COLUMNS)
    for c, rooms in enumerate(households):
        community = f"社区{c}"
        for r in range(rooms):
            w.writerow([community, "片区", "网格", "1栋", str(1000 + r), f"居民{c}-{r}", "resident"])
        w.writerow([community, "", "", "", "", f"委员{c}", "committee"])
    return out.getvalue().encode()


def populate(db: Database, households: list[int]) -> None:
    """The register of `communities_csv(households)`, and an account per person (channel
    "bench", the person's id as the account's external id), made in person-id order."""
    with db.transaction() as session:
        register.import_file(session, communities_csv(households), NOW)
        ids = session.scalars(select(Person.id).order_by(Person.id)).all()
        session.execute(
            Account.__table__.insert(),
            [{"channel": CHANNEL, "external_id": str(i), "person_id": i, "created_at": NOW} for i in ids],
        )


def people_of(db: Database) -> dict[int, tuple[list[str], str]]:
    """Per community id: its residents' and its committee member's chat ids (external ids)."""
    found: dict[int, tuple[list[str], str]] = {}
    with db.transaction() as session:
        rows = session.execute(
            select(Person.community_id, Person.id, Person.household_id).order_by(Person.id)
        ).all()
    residents: dict[int, list[str]] = {}
    chiefs: dict[int, str] = {}
    for community, person, household in rows:
        if household is None:
            chiefs[community] = str(person)
        else:
            residents.setdefault(community, []).append(str(person))
    for community, members in residents.items():
        found[community] = (members, chiefs[community])
    return found


def say(dispatcher: Dispatcher, who: str, text: str) -> None:
    dispatcher.handle(Incoming(CHANNEL, who, who, text=text))


def raise_to_vote(db: Database, dispatcher: Dispatcher, residents: list[str], chief: str) -> int:
    """As bench/votes.py `_prepare`: the first resident raises an issue in the building, the next
    ones support it into discussion, the committee member opens an open vote, one a person, through
    the dialog. The issue's id; refuses loudly when a step did not do what it should."""
    for line in ("/raise", "加装电梯", "老人上下楼困难。", "1", "yes"):
        say(dispatcher, residents[0], line)
    with db.transaction() as session:
        issue_id = session.scalar(select(func.max(Issue.id)).where(Issue.author_id == int(residents[0])))
    if issue_id is None:
        raise RuntimeError(f"the raise dialog of {residents[0]} made no issue")
    status = "raised"
    for who in residents[1:]:
        say(dispatcher, who, f"/support {issue_id}")
        with db.transaction() as session:
            status = session.scalar(select(Issue.status).where(Issue.id == issue_id)) or "missing"
        if status != "raised":
            break
    if status != "discussing":
        raise RuntimeError(f"issue #{issue_id} is {status} after the supports, not in discussion")
    open_vote(db, dispatcher, chief, issue_id)
    return issue_id


def open_vote(db: Database, dispatcher: Dispatcher, chief: str, issue_id: int) -> None:
    """The committee member opens the vote on a discussed issue through the `/openvote` dialog."""
    for line in (f"/openvote {issue_id}", *OPEN_VOTE):
        say(dispatcher, chief, line)
    with db.transaction() as session:
        opened = session.scalar(select(Poll.id).where(Poll.issue_id == issue_id, Poll.closed_at.is_(None)))
    if opened is None:
        raise RuntimeError(f"no vote opened on issue #{issue_id}")
