"""The wake-up: APScheduler's jobs, the catch-up at start, and `yishi clock --once`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import App
from bot.config import Config
from bot.scheduler import Wakeup
from flows import schedule
from storage.db import Database
from storage.models import DueWork, Issue
from tests.harness import TestBot


def raise_one(bot: TestBot) -> None:
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运", "停了三次。")


@pytest.mark.asyncio
async def test_jobs_wake_at_the_next_due_time_at_eight_and_on_a_safety_interval(bot: TestBot) -> None:
    raise_one(bot)
    app = App(Config(database_url=bot.db.url), db=bot.db)
    wakeup = Wakeup(app, {})
    wakeup.start()
    try:
        ids = {job.id for job in wakeup.scheduler.get_jobs()}
        assert {"safety", "digests Asia/Shanghai", "catch-up"} <= ids
        cron = wakeup.scheduler.get_job("digests Asia/Shanghai")
        assert cron is not None and str(cron.trigger) == "cron[hour='8', minute='0']"
        await wakeup.tick()
        nxt = wakeup.scheduler.get_job("next-due")
        with bot.db.transaction() as session:
            due_at = schedule.next_due(session)
        assert nxt is not None and due_at is not None and nxt.next_run_time == max(due_at, nxt.next_run_time)
    finally:
        wakeup.scheduler.shutdown(wait=False)
        await asyncio.sleep(0)


def test_the_clock_process_catches_up_on_what_fell_due(sqlite_db: Database, tmp_path: Path) -> None:
    bot = TestBot(sqlite_db, datetime.now(UTC) - timedelta(days=20))
    from flows import register
    from tests.conftest import REGISTER

    with sqlite_db.transaction() as session:
        register.import_file(session, REGISTER.read_bytes(), bot.clock.now())
    raise_one(bot)  # raised twenty days ago: its support window ended while nothing ran
    yishi = str(Path(sys.executable).with_name("yishi"))
    env = dict(os.environ, DATABASE_URL=sqlite_db.url, YISHI_LOCALE="en")
    done = subprocess.run(
        [yishi, "clock", "--once"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Due work done: 1;" in done.stdout
    with sqlite_db.transaction() as session:
        assert session.scalar(select(Issue.status)) == "expired"
        assert session.scalar(select(DueWork.fired_at).where(DueWork.kind == "expire")) is not None
    again = subprocess.run(
        [yishi, "clock", "--once"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert "Due work done: 0; messages sent: 0." in again.stdout  # nothing is done twice


def test_two_clock_processes_on_postgresql_claim_each_row_once(postgres_url: str) -> None:
    """500 reminders fall due; two `yishi clock --once` processes race for them: each is done once."""
    from sqlalchemy import func

    from flows import register
    from storage.models import Account, Outbox, Person
    from tests.conftest import START, empty_database
    from tests.test_secrecy_and_concurrency import _crowd

    db = Database(postgres_url)
    empty_database(db)
    past = datetime.now(UTC) - timedelta(minutes=1)  # the reminders fell due a minute ago
    with db.transaction() as session:
        register.import_file(session, _crowd(500, 1), START)
        people = session.scalars(select(Person).where(Person.household_id.is_not(None))).all()
        session.add_all(
            Account(channel="load", external_id=str(p.id), person_id=p.id, created_at=START) for p in people
        )
        author = people[0]
        issue = Issue(
            community_id=author.community_id, scope_id=author.community_id, author_id=author.id, title="加装电梯",
            details="详情", status="acting", created_at=START, support_deadline=START,
        )  # fmt: skip
        session.add(issue)
        session.flush()
        from storage.models import ActionItem

        for p in people:
            item = ActionItem(
                issue_id=issue.id, owner_id=p.id, creator_id=author.id, title="检修", due_at=past + timedelta(hours=23),
                progress=0, created_at=START,
            )  # fmt: skip
            session.add(item)
            session.flush()
            schedule.at(session, "item_due", item.id, past)
    yishi = str(Path(sys.executable).with_name("yishi"))
    env = dict(os.environ, DATABASE_URL=postgres_url, YISHI_LOCALE="en")
    clocks = [
        subprocess.Popen([yishi, "clock", "--once"], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [c.communicate(timeout=120)[0] for c in clocks]
    assert all(c.returncode == 0 for c in clocks), outputs
    won = sum(int(o.split("Due work done: ")[1].split(";")[0]) for o in outputs)  # seen split e.g. 78 / 422
    with db.transaction() as session:
        queued = session.scalar(
            select(func.count()).select_from(Outbox).where(Outbox.msgid.contains("due within a day"))
        )
        fired = session.scalar(select(func.count()).select_from(DueWork).where(DueWork.fired_at.is_not(None)))
    assert won == fired == queued == 500  # each reminder claimed by one clock or the other, queued once
    db.dispose()
