"""The wake-up: APScheduler's jobs, the catch-up at start, and `yishi clock --once`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import App
from bot.config import Config
from bot.scheduler import Wakeup
from flows import schedule
from flows.messages import Reply
from flows.outbox import Pace, Recipient
from storage.db import Database
from storage.models import DueWork, Issue, Outbox
from tests.harness import YISHI, TestBot, comments_on_another_channel, raised_twenty_days_ago


def raise_one(bot: TestBot) -> None:
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运", "停了三次。")


@pytest.mark.asyncio
async def test_jobs_wake_at_the_next_due_time_at_eight_and_on_a_safety_interval(bot: TestBot) -> None:
    raise_one(bot)
    app = App(Config(database_url=bot.db.url), db=bot.db)
    wakeup = Wakeup(app, [])
    wakeup.start()
    try:
        ids = {job.id for job in wakeup.scheduler.get_jobs()}
        assert {"safety", "digests Asia/Shanghai", "catch-up"} <= ids
        cron = wakeup.scheduler.get_job("digests Asia/Shanghai")
        assert cron is not None and str(cron.trigger) == "cron[hour='8', minute='0']"
        await wakeup.tick()
        nxt = wakeup.scheduler.get_job("next-due")
        with bot.db.transaction() as session:
            due_at, _ = schedule.next_due(session)
        # the earliest of the due rows and the next planning of digests (an hour at most)
        assert due_at is not None and app.next_due is not None and app.next_due <= due_at
        assert nxt is not None and nxt.next_run_time == max(app.next_due, nxt.next_run_time)
    finally:
        wakeup.scheduler.shutdown(wait=False)
        await asyncio.sleep(0)


def test_the_clock_process_catches_up_on_what_fell_due(sqlite_db: Database, tmp_path: Path) -> None:
    raised_twenty_days_ago(sqlite_db)
    env = dict(os.environ, DATABASE_URL=sqlite_db.url, YISHI_LOCALE="en")
    done = subprocess.run(
        [YISHI, "clock", "--once"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Due work done: 1;" in done.stdout
    with sqlite_db.transaction() as session:
        assert session.scalar(select(Issue.status)) == "expired"
        assert session.scalar(select(DueWork.fired_at).where(DueWork.kind == "expire")) is not None
    again = subprocess.run(
        [YISHI, "clock", "--once"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert "Due work done: 0; messages sent: 0." in again.stdout  # nothing is done twice


@pytest.mark.asyncio
async def test_a_wake_up_asked_for_while_the_next_due_step_runs_is_not_lost(bot: TestBot) -> None:
    """APScheduler skips (and drops) a second instance of a running job: a wake-up an update asks
    for meanwhile must still run, not wait for the safety interval."""
    app = App(Config(database_url=bot.db.url), db=bot.db)
    wakeup = Wakeup(app, [])
    running, carry_on = threading.Event(), threading.Event()
    steps = []

    def step() -> tuple[int, int]:  # the first step is held open
        steps.append(1)
        running.set()
        carry_on.wait(10)
        return 0, 0

    wakeup.step = step  # type: ignore[method-assign]
    wakeup.scheduler.start()
    try:
        first = asyncio.create_task(wakeup._next_due())
        await asyncio.to_thread(running.wait, 10)
        app.woken("message", app.clock.now())  # an update's commit queues a message, due now
        wakeup.plan_next()
        await asyncio.sleep(0.5)  # a job due now would be run (and skipped) meanwhile
        carry_on.set()
        await first
        for _ in range(100):
            if len(steps) == 2:
                break
            await asyncio.sleep(0.05)
        assert len(steps) == 2  # woken again for the message, at once
    finally:
        wakeup.scheduler.shutdown(wait=False)
        await asyncio.sleep(0)


class HeldSend:
    """A channel whose first send is held open until the test lets it go; it notes whether it
    was stopped while a send was under way."""

    name, max_length, quiet_hours, at_once = "telegram", None, True, 1

    def __init__(self) -> None:
        self.sending, self.go_on = threading.Event(), threading.Event()
        self.in_send = False
        self.sent: list[str] = []
        self.stopped_mid_send: bool | None = None

    def measure(self, text: str) -> int:
        return len(text)

    def send(self, recipient: Recipient, message: Reply) -> str | None:
        self.in_send = True
        self.sending.set()
        self.go_on.wait(10)
        self.sent.append(message.text)
        self.in_send = False
        return None

    def edit(self, recipient: Recipient, ref: str, message: Reply) -> None:
        raise AssertionError("nothing is edited here")

    def pace(self, recipient: Recipient) -> Pace | None:
        return None

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped_mid_send = self.in_send


@pytest.mark.asyncio
async def test_stopping_the_clock_waits_for_the_message_being_sent_and_sends_no_more(bot: TestBot) -> None:
    """Shutting the scheduler down cancels its running job, but not the step's thread: the
    channel must not be closed under the message it is sending (it would be sent again)."""
    comments_on_another_channel(bot, "telegram")
    channel = HeldSend()
    wakeup = Wakeup(bot.app, [channel])
    wakeup.start()  # its catch-up job runs a step at once
    await asyncio.to_thread(channel.sending.wait, 10)
    stopping = asyncio.create_task(wakeup.stop())
    await asyncio.sleep(0.3)
    assert channel.stopped_mid_send is None and not stopping.done()
    channel.go_on.set()
    await asyncio.wait_for(stopping, 10)
    assert channel.stopped_mid_send is False and len(channel.sent) == 1
    with bot.db.transaction() as session:
        rows = session.scalars(select(Outbox).order_by(Outbox.id)).all()
        assert [r.sent_at is not None for r in rows] == [True, False, False]
        assert [r.attempts for r in rows[1:]] == [0, 0]  # not tried: sent at the next start
