"""The wake-up: APScheduler 3 (`AsyncIOScheduler`, its in-memory job store) wakes the process;
the database is the truth for what is due.

A job store is never shared between processes, so each clock keeps its own, with explicit
ids and `replace_existing`. It wakes at the next due time, on a safety interval, and at
08:00 in each community's time zone (digests); every wake-up runs the same step: claim and
do what fell due, then send what is queued. At start it catches up on everything overdue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select

from bot.app import App
from bot.channels import Outward
from flows import outbox, schedule, settings
from storage.models import Scope

log = logging.getLogger("yishi.clock")

SAFETY_SECONDS = 60
JOB_DEFAULTS = {"coalesce": True, "misfire_grace_time": None, "max_instances": 1}


class Wakeup:
    def __init__(self, app: App, senders: Mapping[str, outbox.Send]) -> None:
        self.app, self.senders = app, senders
        self.scheduler = AsyncIOScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS)

    def step(self) -> tuple[int, int]:
        """Due work, then delivery; (rows won, messages sent)."""
        won = self.app.run_due()
        sent = self.app.deliver(self.senders)
        return won, sent

    async def tick(self) -> None:
        won, sent = await asyncio.to_thread(self.step)  # the database calls are blocking
        if won or sent:
            log.info("clock: %d due rows done, %d messages sent", won, sent)
        self.plan_next()

    def plan_next(self) -> None:
        with self.app.db.transaction() as session:
            at = schedule.next_due(session)
        if at is not None:
            self.scheduler.add_job(
                self.tick, "date", run_date=max(at, datetime.now(UTC)), id="next-due", replace_existing=True
            )

    def timezones(self) -> set[str]:
        with self.app.db.transaction() as session:
            communities = session.scalars(select(Scope.id).where(Scope.level == "community")).all()
            return {
                str(settings.get(session, c, "timezone", self.app.config.timezone)) for c in communities
            } or {self.app.config.timezone}

    def start(self) -> None:
        self.scheduler.add_job(
            self.tick, "interval", seconds=SAFETY_SECONDS, id="safety", replace_existing=True
        )
        for tz in sorted(self.timezones()):
            trigger = CronTrigger(hour=8, minute=0, timezone=tz)
            self.scheduler.add_job(self.tick, trigger, id=f"digests {tz}", replace_existing=True)
        self.scheduler.add_job(
            self.tick, "date", run_date=datetime.now(UTC), id="catch-up", replace_existing=True
        )
        self.scheduler.start()


@contextlib.asynccontextmanager
async def sending(channels: Sequence[Outward]) -> AsyncIterator[dict[str, outbox.Send]]:
    """The channels started for the time of the block: the outbox's senders by channel name."""
    async with contextlib.AsyncExitStack() as stack:
        for channel in channels:
            await channel.start()
            stack.push_async_callback(channel.stop)
        yield {channel.name: channel.send for channel in channels}


async def run_forever(app: App, channels: Sequence[Outward]) -> None:
    async with sending(channels) as senders:
        wakeup = Wakeup(app, senders)
        wakeup.start()
        try:
            await asyncio.Event().wait()
        finally:
            wakeup.scheduler.shutdown(wait=False)


async def run_once(app: App, channels: Sequence[Outward]) -> tuple[int, int]:
    """What is due now, and its messages sent: `yishi clock --once`."""
    async with sending(channels) as senders:
        return await asyncio.to_thread(Wakeup(app, senders).step)
