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
from storage.db import Database
from storage.models import DueWork, Issue
from tests.harness import YISHI, TestBot, raised_twenty_days_ago


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
