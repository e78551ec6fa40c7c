"""The wake-up: APScheduler 3 (`AsyncIOScheduler`, its in-memory job store) wakes the process;
the database is the truth for what is due.

A job store is never shared between processes, so each clock keeps its own, with explicit
ids and `replace_existing`. It wakes at the next due time, on a safety interval, and at
08:00 in each community's time zone (digests); every wake-up runs the same step: claim and
do what fell due, then send what is queued. At start it catches up on everything overdue.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select

from bot.app import SAFETY_SECONDS, App
from bot.channels import ChannelUnavailable, Outward
from flows import settings
from storage.models import Scope

log = logging.getLogger("yishi.clock")

JOB_DEFAULTS = {"coalesce": True, "misfire_grace_time": None, "max_instances": 1}


class Wakeup:
    def __init__(self, app: App, channels: Sequence[Outward]) -> None:
        self.app, self.channels = app, channels
        self.ready: dict[str, Outward] = {}  # the channels started: only their messages are claimed
        self.busy = asyncio.Lock()  # the jobs share one step at a time
        self.stopping = threading.Event()  # read by the sender between messages
        self.scheduler = AsyncIOScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS)
        self.planned: datetime | None = None  # the time of the "next-due" job, while there is one
        self.due_running = False  # the "next-due" job is running

    async def connect(self) -> list[ChannelUnavailable]:
        """Start the channels not started yet; why each of the others cannot start. One that
        cannot be reached is tried again at the next wake-up; its messages wait meanwhile."""
        failed = []
        for channel in self.channels:
            if channel.name in self.ready:
                continue
            try:
                await channel.start()
            except ChannelUnavailable as exc:
                (log.error if exc.permanent else log.warning)(
                    "%s cannot start: %s; its messages wait", channel.name, exc
                )
                failed.append(exc)
            else:
                self.ready[channel.name] = channel
        return failed

    async def disconnect(self) -> None:
        """Stop after the message being sent, then close the channels."""
        self.stopping.set()
        async with self.busy:
            pass
        for channel in self.ready.values():
            await channel.stop()
        self.ready = {}

    async def stop(self) -> None:
        """No job starts again; the one running ends after the message being sent; then the
        channels close."""
        self.stopping.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)  # cancels the jobs running: see `tick`
        await self.disconnect()

    def step(self) -> tuple[int, int]:
        """Due work, then delivery; (rows won, messages sent)."""
        return self.app.step(self.ready, self.stopping.is_set)

    async def tick(self) -> None:
        async with self.busy:
            await self.connect()
            # The database calls are blocking, so the step runs in a thread, which a cancelled job
            # (the scheduler shutting down) cannot stop: the job waits for it, or `busy` would be
            # free and the channels closed under the message being sent.
            step = asyncio.ensure_future(asyncio.to_thread(self.step))
            try:
                won, sent = await asyncio.shield(step)
            except asyncio.CancelledError:
                self.stopping.set()  # the step stops after the message being sent
                await step
                raise
        if won or sent:
            log.info("clock: %d due rows done, %d messages sent", won, sent)
        self.planned = None  # planned again from what this step learnt
        self.plan_next()

    async def _next_due(self) -> None:
        """The "next-due" job. While it runs, a wake-up asked for (an update's commit) is planned
        when it ends: APScheduler would skip a second instance of the same job, and drop it."""
        self.due_running = True
        try:
            await self.tick()
        finally:
            self.due_running = False
        self.planned = None
        self.plan_next()

    def plan_next(self) -> None:
        """A wake-up at the next due time, where that is not planned already (called after every
        step, and after every update a process with updates handles)."""
        at = self.app.next_due
        if at is not None and at != self.planned and not self.due_running:
            self.planned = at
            # `at` is on the app's clock (moved in the console and in tests); the scheduler's is real
            wait = max(at - self.app.clock.now(), timedelta(0))
            self.scheduler.add_job(
                self._next_due,
                "date",
                run_date=datetime.now(UTC) + wait,
                id="next-due",
                replace_existing=True,
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


async def run_forever(app: App, channels: Sequence[Outward]) -> None:
    """The clock process; a channel whose token is refused stops it before anything runs."""
    wakeup = Wakeup(app, channels)
    try:
        for failure in await wakeup.connect():
            if failure.permanent:
                raise failure
        wakeup.start()
        if app.db.shared:  # what web workers write is sent at once, not at the next safety look
            loop = asyncio.get_running_loop()

            def woken(what: str, at: datetime) -> None:
                app.woken(what, at)
                loop.call_soon_threadsafe(wakeup.plan_next)

            threading.Thread(target=app.db.listen, args=(woken, wakeup.stopping), daemon=True).start()
        await asyncio.Event().wait()
    finally:
        await wakeup.stop()


async def run_once(app: App, channels: Sequence[Outward]) -> tuple[int, int, list[ChannelUnavailable]]:
    """What is due now, and its messages sent: `yishi clock --once`. The due work is done even
    when a channel cannot start; (rows won, messages sent, why channels could not start)."""
    wakeup = Wakeup(app, channels)
    try:
        failed = await wakeup.connect()
        won, sent = await asyncio.to_thread(wakeup.step)
    finally:
        await wakeup.disconnect()
    return won, sent, failed
