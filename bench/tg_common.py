"""Shared set-up for the Telegram benchmarks: one building's register, its people joined and its
vote opened through the core as Telegram accounts, and a bot (yishi's long polling, or a bare
echo bot) run on an event loop of its own in a thread of the benchmark's process.

The set-up goes straight to the dispatcher (`Incoming` on the "telegram" channel, as the edge
makes them): what is measured afterwards goes through the real library and the fake Bot API.
Quiet hours are switched off: the benchmarks run at any hour, and a notification is held back
until 07:00 otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import func, select
from telegram import Update
from telegram.ext import Application, ContextTypes, TypeHandler

from bench.tg_fake import FakeProcess
from bot.app import App
from bot.channels.telegram import updates
from bot.channels.telegram.runner import ByPerson, Polling
from bot.channels.telegram.sender import make_bot
from bot.config import Config
from flows import invites, register, settings
from flows.messages import Incoming, Reply
from storage.models import Account, Issue, Outbox, Person, Poll, Scope

COMMUNITY, BUILDING = "基准社区", "1栋"
LEADER = 9_999  # the building leader's Telegram user id; resident n's is FIRST + n
FIRST = 10_000
GROUP = -1_001_000_000_001  # the building's group
TIMEOUT = 60.0


def user_id(n: int) -> int:
    return FIRST + n


def resident_name(n: int) -> str:
    return f"居民{n}"


def building_csv(residents: int) -> bytes:
    """One building of `residents` households, one resident each, and its building leader."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(register.COLUMNS)
    for n in range(residents):
        w.writerow([COMMUNITY, "东片区", "东一网格", BUILDING, str(10_000 + n), resident_name(n), "resident"])
    w.writerow([COMMUNITY, "东片区", "东一网格", BUILDING, "9999", "楼长", "building_leader"])
    return out.getvalue().encode()


def config(database_url: str, api_url: str, token: str, ballot_key: str, **more: str) -> Config:
    return Config(
        database_url=database_url,
        telegram_token=token,
        telegram_api_url=api_url,
        ballot_key=ballot_key,
        **more,  # type: ignore[arg-type]
    )


def populate(app: App, residents: int) -> None:
    """The register; quiet hours off, and 1% of the households' support opens a discussion."""
    now = app.clock.now()
    with app.db.transaction() as session:
        register.import_file(session, building_csv(residents), now)
        community = session.scalar(select(Scope.id).where(Scope.level == "community"))
        assert community is not None
        settings.put(session, community, "quiet_hours", "off")
        settings.put(session, community, "support_percent", "1")  # 11 households of 1,001 to discuss


def say(app: App, user: int, text: str, chat: int | None = None, **more: object) -> list[Reply]:
    """As the edge hands a message (or, with `payload=`, a press) to the dispatcher."""
    where = user if chat is None else chat
    return app.dispatcher.handle(
        Incoming(updates.CHANNEL, str(user), str(where), text, is_group=where < 0, **more)  # type: ignore[arg-type]
    )


def codes(app: App) -> dict[str, str]:
    with app.db.transaction() as session:
        return {name: code for name, _, _, code in invites.open_codes(session, None)}


def join(app: App, people: dict[int, str]) -> None:
    """Each opens their invite link (`/start join_CODE`), by user id and name."""
    known = codes(app)
    for user, name in people.items():
        replies = say(app, user, f"/start join_{known[name]}")
        if not replies or name not in replies[0].text:
            raise RuntimeError(f"{name} did not join: {[r.text for r in replies]}")


def accounts(app: App, people: dict[int, int]) -> None:
    """Telegram accounts made straight in the database, person by user id (a thousand joins through
    the bot would be a thousand welcomes sent at 30 a second before the benchmark begins)."""
    now = app.clock.now()
    with app.db.transaction() as session:
        session.execute(
            Account.__table__.insert(),
            [
                {"channel": updates.CHANNEL, "external_id": str(user), "person_id": person, "created_at": now,
                 "last_seen_at": now}
                for user, person in people.items()
            ],
        )  # fmt: skip


def person_ids(app: App) -> dict[str, int]:
    with app.db.transaction() as session:
        return dict(session.execute(select(Person.name, Person.id)).all())  # type: ignore[arg-type]


def raise_issue(app: App, author: int, title: str, supporters: list[int]) -> int:
    """Raised for the building, by typing the dialog's choices; supported into discussion by as
    many of the supporters as it takes."""
    for text in ("/raise", title, f"{title},影响居民生活。", "1", "1"):
        replies = say(app, author, text)
    with app.db.transaction() as session:
        person = session.scalar(
            select(Account.person_id).where(
                Account.channel == updates.CHANNEL, Account.external_id == str(author)
            )
        )
        issue = session.scalar(select(func.max(Issue.id)).where(Issue.author_id == person))
    if issue is None:
        raise RuntimeError(f"the raise dialog made no issue: {[r.text for r in replies]}")
    for who in supporters:
        say(app, who, f"/support {issue}")
        with app.db.transaction() as session:
            if session.scalar(select(Issue.status).where(Issue.id == issue)) != "raised":
                return issue
    raise RuntimeError(f"issue #{issue} is not in discussion after {len(supporters)} supports")


def open_vote(app: App, issue: int) -> int:
    """The leader opens an open vote (agree/against/abstain), a vote a person, for 7 days."""
    for text in (f"/openvote {issue}", "1", "7d", "1", "2", "1"):
        replies = say(app, LEADER, text)
    with app.db.transaction() as session:
        poll = session.scalar(select(Poll.id).where(Poll.issue_id == issue, Poll.closed_at.is_(None)))
    if poll is None:
        raise RuntimeError(f"no vote opened on #{issue}: {[r.text for r in replies]}")
    return poll


def bind_group(app: App) -> None:
    replies = say(app, LEADER, "/linkgroup", GROUP, group_admin=True, chat_title="1栋邻里群")
    if not replies or "绑定" not in replies[0].text:
        raise RuntimeError(f"the group was not bound: {[r.text for r in replies]}")


def wait(condition: Callable[[], object], what: str, timeout: float = TIMEOUT) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise RuntimeError(f"not within {timeout:.0f} s: {what}")


def vote_messages(
    fake: FakeProcess, polls: list[int], check: Callable[[], None] = lambda: None
) -> dict[int, int]:
    """The message id of each vote's message in the group, once posted (`check` raises if what
    posts them has stopped)."""
    found: dict[int, int] = {}

    def look() -> bool:
        check()
        for chat, message_id, kind, _, _ in fake.call("records"):
            if chat != GROUP or kind != "text":
                continue
            buttons = fake.call("buttons", message_id)
            for poll in polls:
                if f"v:{poll}:1" in buttons:
                    found[poll] = message_id
        return len(found) == len(polls)

    wait(look, "the vote messages in the group")
    return found


class BotThread:
    """`main(stop)` in a thread, run as the `yishi` commands run it (`asyncio.run`: what is still
    running in the loop's executor is waited for at the end), until `close()` sets `stop`."""

    def __init__(self, main: Callable[[asyncio.Event], Awaitable[None]], name: str) -> None:
        self.main = main
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop: asyncio.Event | None = None
        self.running = threading.Event()  # `loop` and `stop` are there (or it failed at once)
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name=name)

    def _run(self) -> None:
        async def run() -> None:
            self.loop, self.stop = asyncio.get_running_loop(), asyncio.Event()
            self.running.set()
            await self.main(self.stop)

        try:
            asyncio.run(run())
        except BaseException as exc:
            self.failure = exc
        finally:
            self.running.set()

    def start(self) -> None:
        self.thread.start()

    def check(self) -> None:
        if self.failure is not None:
            raise RuntimeError(f"the bot stopped: {self.failure!r}") from self.failure

    def close(self) -> None:
        self.running.wait(TIMEOUT)
        if self.loop is not None and self.stop is not None:
            with contextlib.suppress(RuntimeError):  # its loop closed already: it stopped by itself
                self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(TIMEOUT)
        if self.thread.is_alive():
            raise RuntimeError(f"{self.thread.name} did not stop within {TIMEOUT:.0f} s")
        self.check()


def polling_bot(app: App, cfg: Config) -> tuple[BotThread, Polling]:
    """`yishi telegram` (long polling, the clock and the sender in-process) in a thread."""
    runner = Polling(app, cfg)
    return BotThread(runner.run, "yishi-polling"), runner


@dataclass
class Echo:
    """A bare python-telegram-bot bot, set up as yishi's is (its `ByPerson` update processor, the
    bot of `make_bot` with its `AIORateLimiter`, polling for the same kinds of update):
    it answers a message with its text and a press with answerCallbackQuery."""

    cfg: Config
    handled: int = 0
    polling: bool = False

    async def handle(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            if update.callback_query is not None:
                await update.callback_query.answer()
            elif update.effective_message is not None and update.effective_chat is not None:
                text = update.effective_message.text or "…"
                await context.bot.send_message(update.effective_chat.id, text)
        finally:
            self.handled += 1

    async def run(self, stop: asyncio.Event) -> None:
        built = Application.builder().bot(make_bot(self.cfg)).concurrent_updates(ByPerson()).build()
        built.add_handler(TypeHandler(Update, self.handle))
        async with built:
            await built.start()
            assert built.updater is not None
            await built.updater.start_polling(allowed_updates=list(updates.ALLOWED_UPDATES))
            self.polling = True
            try:
                await stop.wait()
            finally:
                await built.updater.stop()
                await built.stop()


def unsent(app: App) -> int:
    """Outbox rows still to be sent (not sent, failed or held)."""
    with app.db.transaction() as session:
        return int(
            session.scalar(
                select(func.count(Outbox.id)).where(
                    Outbox.sent_at.is_(None), Outbox.failed_at.is_(None), Outbox.held_at.is_(None)
                )
            )
            or 0
        )


# what the bot logs under load (a press answered too late, the safety wake-up skipped while a long
# delivery runs) would bury the table: the benchmarks read such things from the fake instead
NOISY = ("yishi", "apscheduler", "telegram", "httpx")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in NOISY]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
