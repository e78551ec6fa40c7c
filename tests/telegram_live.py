"""`yishi telegram` in a thread of the test, against the fake Bot API: the real `Application`
polls, the edge answers through the dispatcher, the clock sends the outbox.

A test makes people act in the fake (`fake.say`, `fake.press`, …), then `settle()`s: every
update queued so far is handled and what fell due is sent.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from bot.channels.telegram.runner import Polling
from flows import invites
from tests.fake_telegram import FakeTelegram, running
from tests.harness import TestBot

TIMEOUT = 20.0


def wait(condition: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.01)
    raise AssertionError(f"not within {timeout} s: {what}")


class Live:
    def __init__(self, bot: TestBot, fake: FakeTelegram) -> None:
        self.bot, self.fake = bot, fake
        config = replace(bot.app.config, telegram_token=fake.token, telegram_api_url=fake.api_url)
        self.polling = Polling(bot.app, config)
        self.loop = asyncio.new_event_loop()
        self.stop: asyncio.Event | None = None
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.stop = asyncio.Event()
            await self.polling.run(self.stop)

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:  # shown by the test, not lost in the thread
            self.failure = exc

    def start(self) -> None:
        self.thread.start()
        wait(lambda: self.fake.allowed_updates or self.failure, "polling begins")
        if self.failure:
            raise self.failure

    def close(self) -> None:
        if self.stop is not None:
            self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive(), "polling did not stop"
        self.loop.close()
        if self.failure:
            raise self.failure

    def settle(self) -> None:
        """Every update queued so far handled, then a wake-up: what fell due done and sent."""
        wait(lambda: self.polling.edge.handled >= self.fake.enqueued, "the updates are handled")
        self.tick()

    def tick(self) -> None:
        """What the clock does when it wakes (the test's clock may have been moved meanwhile)."""
        asyncio.run_coroutine_threadsafe(self.polling.wakeup.tick(), self.loop).result(TIMEOUT)

    # --- what people do, then settled

    def say(self, user: int, text: str, chat: int | None = None) -> None:
        self.fake.say(user, text, chat)
        self.settle()

    def press(self, user: int, message_id: int, data: str) -> str:
        query = self.fake.press(user, message_id, data)
        self.settle()
        return query

    def answer_to(self, query: str) -> dict:
        return next(a for a in self.fake.answers if a["callback_query_id"] == query)

    def last(self, chat: int) -> dict:
        message = self.fake.last_to(chat)
        assert message is not None, f"nothing sent to {chat}"
        return message

    def data(self, chat: int, label: str) -> tuple[int, str]:
        """(message id, callback data) of the button labelled `label…` on the last message to `chat`."""
        message = self.last(chat)
        for row in message.get("reply_markup", {}).get("inline_keyboard", []):
            for button in row:
                if button["text"].startswith(label) and "callback_data" in button:
                    return message["message_id"], button["callback_data"]
        raise AssertionError(f"no button {label!r} on {message}")

    def code_of(self, name: str) -> str:
        with self.bot.db.transaction() as session:
            return next(code for who, _, _, code in invites.open_codes(session, None) if who == name)


@contextmanager
def live(bot: TestBot, fake: FakeTelegram | None = None) -> Iterator[Live]:
    with running(fake or FakeTelegram()) as f:
        session = Live(bot, f)
        session.start()
        try:
            yield session
        finally:
            session.close()
