"""`yishi clock` as a process, sending through Telegram (a fake Bot API on 127.0.0.1).

Killed with SIGKILL in the middle of its deliveries and restarted, it loses nothing and
sends a message twice only if that message was in flight at the kill. Two clocks on
PostgreSQL at once claim and deliver each reminder once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from flows import register, schedule, settings
from storage.db import Database
from storage.models import Account, ActionItem, DueWork, Issue, Outbox, Person
from tests.conftest import START, empty_database
from tests.fake_telegram import FakeTelegram, running
from tests.harness import YISHI, TestBot, comments_on_another_channel
from tests.test_races import bot as pg_bot  # noqa: F401  (the PostgreSQL-only TestBot)
from tests.test_secrecy_and_concurrency import _crowd

REMINDERS = 500


def items_due(db: Database, n: int) -> set[int]:
    """`n` residents on Telegram, each owning an action item due tomorrow whose reminder fell due
    a minute ago; their chat ids."""
    past = datetime.now(UTC) - timedelta(minutes=1)
    with db.transaction() as session:
        register.import_file(session, _crowd(n, 1), START)
        people = session.scalars(select(Person).where(Person.household_id.is_not(None))).all()
        session.add_all(
            Account(channel="telegram", external_id=str(10_000 + p.id), person_id=p.id, created_at=START)
            for p in people
        )
        # these tests run at whatever time it is: no quiet hours hold the reminders back
        settings.put(session, people[0].community_id, "quiet_hours", "off")
        author = people[0]
        issue = Issue(
            community_id=author.community_id, scope_id=author.community_id, author_id=author.id, title="加装电梯",
            details="详情", status="acting", created_at=START, support_deadline=START,
        )  # fmt: skip
        session.add(issue)
        session.flush()
        for p in people:
            item = ActionItem(
                issue_id=issue.id, owner_id=p.id, creator_id=author.id, title="检修", due_at=past + timedelta(hours=23),
                progress=0, created_at=START,
            )  # fmt: skip
            session.add(item)
            session.flush()
            schedule.at(session, "item_due", item.id, past)
        return {10_000 + p.id for p in people}


def clock_env(db: Database, fake: FakeTelegram) -> dict[str, str]:
    return dict(
        os.environ,
        DATABASE_URL=db.url,
        YISHI_LOCALE="en",
        TELEGRAM_TOKEN=fake.token,
        TELEGRAM_API_URL=fake.api_url,
    )


def sent_chats(db: Database) -> set[int]:
    with db.transaction() as session:
        rows = session.scalars(
            select(Account.external_id)
            .join(Outbox, Outbox.account_id == Account.id)
            .where(Outbox.sent_at.is_not(None))
        )
        return {int(chat) for chat in rows}


def wait_for(condition, seconds: float = 90) -> None:  # type: ignore[no-untyped-def]
    """Poll for a condition the process brings about (not a sleep standing in for a signal)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the clock did not get there in time"
        time.sleep(0.05)


def test_a_clock_killed_mid_delivery_loses_nothing_and_doubles_only_what_was_in_flight(
    sqlite_db: Database,
) -> None:
    chats = items_due(sqlite_db, REMINDERS)
    kill_at = 137
    fake = FakeTelegram(chats=set(chats))
    clock: subprocess.Popen[str] | None = None

    def kill(count: int) -> None:  # the hook: the 137th message has arrived, its answer not yet sent
        if count == kill_at and clock is not None:
            os.kill(clock.pid, signal.SIGKILL)

    fake.on_message = kill
    with running(fake):
        env = clock_env(sqlite_db, fake)
        clock = subprocess.Popen(
            [YISHI, "clock"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            clock.communicate(timeout=120)
        finally:
            clock.kill()  # if the hook never fired, the test fails without leaving a clock behind
        assert clock.returncode == -signal.SIGKILL
        fake.on_message = None

        received = {chat for chat, _ in fake.sent}
        in_flight = received - sent_chats(sqlite_db)  # at the sink, not marked sent
        assert len(fake.sent) == kill_at and len(in_flight) == 1
        with sqlite_db.transaction() as session:  # every reminder was claimed and queued before sending
            assert (
                session.scalar(select(func.count()).select_from(DueWork).where(DueWork.fired_at.is_(None)))
                == 0
            )
            assert session.scalar(select(func.count()).select_from(Outbox)) == REMINDERS

        restarted = subprocess.Popen(
            [YISHI, "clock"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            wait_for(lambda: len(sent_chats(sqlite_db)) == REMINDERS - 1)
        finally:
            restarted.kill()
            restarted.communicate(timeout=30)
        assert sent_chats(sqlite_db) == chats - in_flight  # the message in flight waits out its lease
        assert len(fake.sent) == REMINDERS

        # five minutes later its lease has run out (moved here rather than waited for): it is sent again
        with sqlite_db.transaction() as session:
            session.execute(
                update(Outbox).where(Outbox.sent_at.is_(None)).values(next_attempt_at=datetime.now(UTC))
            )
        once = subprocess.run(
            [YISHI, "clock", "--once"], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert "Due work done: 0; messages sent: 1." in once.stdout, once.stderr

    times = Counter(chat for chat, _ in fake.sent)
    assert set(times) == chats  # each reminder delivered
    assert {chat for chat, n in times.items() if n > 1} == in_flight and max(times.values()) == 2
    assert sent_chats(sqlite_db) == chats
    with sqlite_db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Outbox)) == REMINDERS  # nothing queued twice


def test_two_clock_processes_on_postgresql_claim_and_deliver_each_reminder_once(postgres_url: str) -> None:
    db = Database(postgres_url)
    empty_database(db)
    chats = items_due(db, REMINDERS)
    with running(FakeTelegram(chats=set(chats))) as fake:
        env = clock_env(db, fake)
        clocks = [
            subprocess.Popen([YISHI, "clock", "--once"], env=env, stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        try:
            outputs = [c.communicate(timeout=120)[0] for c in clocks]
        finally:
            for c in clocks:
                c.kill()
    assert all(c.returncode == 0 for c in clocks), outputs
    won = [int(o.split("Due work done: ")[1].split(";")[0]) for o in outputs]
    sent = [int(o.split("messages sent: ")[1].split(".")[0]) for o in outputs]
    with db.transaction() as session:
        queued = session.scalar(select(func.count()).select_from(Outbox))
        fired = session.scalar(select(func.count()).select_from(DueWork).where(DueWork.fired_at.is_not(None)))
    assert sum(won) == fired == queued == REMINDERS  # each reminder claimed by one clock or the other
    assert sum(sent) == REMINDERS and sorted(chat for chat, _ in fake.sent) == sorted(chats)  # delivered once
    db.dispose()


def test_a_message_queued_by_another_process_is_sent_at_once_on_postgresql(pg_bot: TestBot) -> None:  # noqa: F811
    """The clock looks at the tables every minute anyway; on PostgreSQL another process's commit
    (a web worker's) wakes it at once (NOTIFY at commit, LISTEN in the clock)."""
    bot, chat = pg_bot, 777001
    with bot.db.transaction() as session:
        settings.put(session, 1, "quiet_hours", "off")  # whatever time it is where the test runs
    comments_on_another_channel(bot, "telegram", str(chat))
    with running(FakeTelegram(chats={chat})) as fake:
        clock = subprocess.Popen(
            [YISHI, "clock"],
            env=clock_env(bot.db, fake),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(lambda: len(fake.texts_to(chat)) == 3, seconds=30)  # the catch-up at its start
            bot.say("/comment 1 四", as_="王芳")  # written by this process, a minute before the clock looks
            wait_for(lambda: len(fake.texts_to(chat)) == 4, seconds=20)
        finally:
            clock.terminate()
            clock.communicate(timeout=30)
    assert fake.texts_to(chat)[-1] == "New comment C4 on your issue #1: 四"
