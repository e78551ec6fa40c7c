"""Secret ballots are secret in the database and the log; concurrent ballots count once."""

from __future__ import annotations

import csv
import io
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from flows import people, register
from flows.clock import FixedClock
from flows.messages import Incoming
from handlers.dispatch import Dispatcher
from storage.db import Database
from storage.models import Account, AuditLog, Ballot, Base, Outbox, Participation, Person, Poll, PollOption
from tests.conftest import START, empty_database
from tests.harness import TestBot, ballot_key
from tests.test_sealed_tallies import VOTERS, secret_poll


def test_nothing_links_a_secret_choice_to_a_person(bot_en: TestBot, caplog: pytest.LogCaptureFixture) -> None:
    secret_poll(bot_en)
    outbox_before = bot_en.count(Outbox)
    caplog.set_level(logging.DEBUG)
    for who, choice in VOTERS.items():
        assert "secret ballot" in bot_en.say(f"/vote 1 {choice}", as_=who)
    logged = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    caplog.clear()
    for label in ("甲方案", "乙方案", "丙方案", "/vote 1 "):
        assert label not in logged
    assert "hidden due to hide_parameters" in logged or "sqlalchemy" not in logged
    with bot_en.db.transaction() as session:
        poll = session.scalar(select(Poll))
        assert session.scalar(select(Ballot.id)) is None
        assert {c.name for c in Participation.__table__.columns} == {"id", "poll_id", "unit_id", "voter_id"}
        assert len(session.scalars(select(Participation)).all()) == 4
        # the running tallies are sealed: the option rows say nothing until the close
        votes = session.execute(select(PollOption.number, PollOption.votes).order_by(PollOption.number)).all()
        assert [tuple(v) for v in votes] == [(1, 0), (2, 0), (3, 0)]
        assert poll.sealed is not None and "甲方案" not in poll.sealed
        details = session.scalars(select(AuditLog.detail).where(AuditLog.action == "vote")).all()
        assert details == [{"poll": poll.id}] * 4
    assert bot_en.count(Outbox) == outbox_before  # a ballot sends nothing to anyone
    # every row that names a voter (a column referring to people): no choice in it
    voters = {_person_id(bot_en, name) for name in VOTERS}
    with bot_en.db.transaction() as session:
        for table in Base.metadata.sorted_tables:
            people_columns = [
                c.name
                for c in table.columns
                if any(fk.column.table.name == "people" for fk in c.foreign_keys)
            ]
            for row in session.execute(select(table)).mappings():
                if any(row[c] in voters for c in people_columns):
                    assert not {"甲方案", "乙方案", "丙方案"} & {str(v) for v in row.values()}, (
                        table.name,
                        dict(row),
                    )
                    assert "choices" not in row, (table.name, dict(row))
    # the close opens the seal and writes the totals to the option rows
    assert "[1] 甲方案 — 2" in bot_en.say("/closevote 1", as_="孙丽华")
    with bot_en.db.transaction() as session:
        votes = session.execute(select(PollOption.number, PollOption.votes).order_by(PollOption.number)).all()
        assert [tuple(v) for v in votes] == [(1, 2), (2, 1), (3, 1)]
        assert session.scalar(select(Poll.sealed)) is None


def _person_id(bot: TestBot, ref: str) -> int:
    with bot.db.transaction() as session:
        return people.find(session, ref).id


def _crowd(households: int, per_household: int) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(register.COLUMNS)
    for h in range(households):
        for m in range(per_household):
            w.writerow(["人多社区", "一片区", "一网格", "1幢", str(1000 + h), f"居民{h}-{m}", "resident"])
    w.writerow(["人多社区", "", "", "", "", "主任", "committee"])
    return out.getvalue().encode()


@pytest.mark.parametrize(("unit", "households", "per_household"), [("household", 150, 2), ("person", 300, 1)])
def test_concurrent_ballots_count_each_unit_once(
    postgres_url: str, unit: str, households: int, per_household: int
) -> None:
    db = Database(postgres_url)
    empty_database(db)
    with db.transaction() as session:
        register.import_file(session, _crowd(households, per_household), START)
        people = session.scalars(
            select(Person).where(Person.household_id.is_not(None)).order_by(Person.id)
        ).all()
        for p in [*people, session.scalar(select(Person).where(Person.name == "主任"))]:
            session.add(Account(channel="load", external_id=str(p.id), person_id=p.id, created_at=START))
        ids = [str(p.id) for p in people]
        chief = str(session.scalar(select(Person.id).where(Person.name == "主任")))
    dispatcher = Dispatcher(db, FixedClock(START), ballot_key())

    def say(who: str, text: str) -> str:
        return "\n".join(r.text for r in dispatcher.handle(Incoming("load", who, who, text=text)))

    say(ids[0], "/raise")
    for line in ("1幢加装电梯", "老人上下楼困难。", "1", "yes"):
        say(ids[0], line)
    for who in ids[1:100]:
        say(who, "/support 1")
    for line in ("/openvote 1", "1", "3d", "1", "1" if unit == "household" else "2", "1"):
        say(chief, line)
    assert "300" in say(chief, "/issue 1") or unit == "household"
    attempts = [(who, "/vote 1 1") for who in ids] + [(who, "/vote 1 2") for who in ids[:60]]
    attempts.sort(key=lambda a: (int(a[0]) % 7, a[0]))  # the duplicates interleaved with the rest
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda a: say(*a), attempts))
    assert not [r for r in replies if "Sorry" in r or "抱歉" in r]
    with db.transaction() as session:
        units = session.scalars(select(Ballot.unit_id)).all()
    assert len(units) == len(set(units)) == households
    closed = say(chief, "/closevote 1")
    assert f"{households}" in closed
    with db.transaction() as session:
        assert session.scalar(select(Poll.turnout)) == households
    db.dispose()
