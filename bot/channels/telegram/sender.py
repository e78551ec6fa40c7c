"""The outbox's messages on Telegram: to residents' private chats and to bound groups.

A Telegram account's external id is the resident's user id, which is also the id of their
private chat with the bot. Sending runs on the process's event loop; the outbox's sender
calls `send` from its worker thread and waits for the answer, so a message is marked sent
only once Telegram has taken it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Coroutine
from concurrent.futures import CancelledError
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

# durations as timedelta, as python-telegram-bot 22.2+ asks of new code (else each flood-control
# answer warns that the old int/float form is deprecated); nothing here reads one
os.environ.setdefault("PTB_TIMEDELTA", "true")

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import MessageLimit
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.ext import AIORateLimiter, ExtBot
from telegram.request import HTTPXRequest

from bot.channels import TOKEN_REFUSED, UNREACHABLE, ChannelUnavailable
from bot.config import Config
from flows.messages import Reply
from flows.outbox import DeliveryFailed, Pace, Recipient, utf16_units

CHANNEL = "telegram"
DEFAULT_API_URL = "https://api.telegram.org/bot"
# one part, flood-control waits included, ends well within the outbox's five-minute lease; a
# send given up at this point may still have reached Telegram, so it is sent again at the retry
SEND_TIMEOUT = 120.0

log = logging.getLogger("yishi.telegram")
T = TypeVar("T")
GROUP_PACE = Pace(20, 60)
# Telegram takes about 30 messages a second from a bot. Sent evenly, a little under: a bucket of
# 30 lets a burst out at once, which a count over the last second refuses (429), and the flood
# wait that follows halts every request of the bot for a second or more.
PER_SECOND = 29


def make_bot(config: Config) -> ExtBot:
    """The bot of this process: Telegram's (or `TELEGRAM_API_URL`'s), sending one message every
    1/29 s at most (`PER_SECOND`), waiting out a flood control's `retry_after` up to three times."""
    api_url = config.telegram_api_url or DEFAULT_API_URL
    return ExtBot(
        config.telegram_token,
        base_url=api_url,
        base_file_url=api_url.removesuffix("/bot") + "/file/bot",
        request=HTTPXRequest(connect_timeout=5, read_timeout=10, write_timeout=10, pool_timeout=5),
        rate_limiter=AIORateLimiter(overall_max_rate=1, overall_time_period=1 / PER_SECOND, max_retries=3),
    )


class TelegramChannel:
    name = CHANNEL
    max_length = MessageLimit.MAX_TEXT_LENGTH  # longer texts (a digest) go in parts, cut at line ends
    quiet_hours = True
    # in turn: AIORateLimiter keeps the overall rate, and a chat answers within its timeout
    at_once = 1
    measure = staticmethod(utf16_units)

    def __init__(self, config: Config, bot: ExtBot | None = None) -> None:
        """`bot`: the one of the process's `Application`, where it receives updates too."""
        self.api_url = config.telegram_api_url or DEFAULT_API_URL
        self.bot = bot or make_bot(config)
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        try:
            await self.bot.initialize()  # getMe: the token is checked once, here
        except InvalidToken:  # its message would carry the token: not repeated
            raise ChannelUnavailable(TOKEN_REFUSED, permanent=True, variable="TELEGRAM_TOKEN") from None
        except TelegramError as exc:  # tried again at the next wake-up
            raise ChannelUnavailable(UNREACHABLE, url=self.api_url, error=exc.message) from None
        self.loop = asyncio.get_running_loop()
        log.info("telegram: sending as @%s", self.bot.username)

    async def stop(self) -> None:
        await self.bot.shutdown()

    def send(self, recipient: Recipient, message: Reply) -> str | None:
        """The outbox's sender (called from a worker thread while the loop runs); the message id."""
        sent = self._call(self._send(self._chat(recipient), message))
        return None if sent is None else str(sent)

    def edit(self, recipient: Recipient, ref: str, message: Reply) -> None:
        self._call(self._edit(self._chat(recipient), int(ref), message))

    def pace(self, recipient: Recipient) -> Pace | None:
        """Telegram's limit per group, 20 messages a minute: paced here, before the rate limiter
        would halt every request (its overall 30 a second it keeps itself)."""
        return GROUP_PACE if recipient.is_group else None

    def markup(self, message: Reply) -> InlineKeyboardMarkup | None:
        """The buttons of a message, one a row; a pointer to the private chat is a deep link."""
        rows = [[InlineKeyboardButton(o.label, callback_data=o.payload)] for o in message.options]
        if message.start:
            link = deep_link(self.bot.username, message.start)
            rows.append([InlineKeyboardButton(f"→ @{self.bot.username}", url=link)])
        return InlineKeyboardMarkup(rows) if rows else None

    def _chat(self, recipient: Recipient) -> int:
        try:
            return int(recipient.chat_id)
        except ValueError:
            raise DeliveryFailed(f"not a Telegram chat id: {recipient.chat_id!r}", permanent=True) from None

    def _call(self, coroutine: Coroutine[object, object, T]) -> T:
        if self.loop is None:
            coroutine.close()
            raise DeliveryFailed("the Telegram channel is not started")
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(SEND_TIMEOUT)
        except FutureTimeout:
            future.cancel()
            raise DeliveryFailed("Telegram did not answer in time") from None
        except CancelledError:  # the process is stopping
            raise DeliveryFailed("sending was cancelled") from None

    async def _send(self, chat_id: int, message: Reply) -> int:
        try:
            sent = await self.bot.send_message(
                chat_id=chat_id, text=message.text, reply_markup=self.markup(message)
            )
        except TelegramError as exc:
            raise failure(exc) from None
        return sent.message_id

    async def _edit(self, chat_id: int, message_id: int, message: Reply) -> None:
        try:
            await self.bot.edit_message_text(
                chat_id=chat_id, message_id=message_id, text=message.text, reply_markup=self.markup(message)
            )
        except BadRequest as exc:
            if not unchanged(exc):  # unchanged counts as done
                raise failure(exc) from None
        except TelegramError as exc:
            raise failure(exc) from None


def unchanged(exc: BadRequest) -> bool:
    """Telegram's answer to an edit that changes nothing: the message is as it should be."""
    return "not modified" in exc.message.lower()


def deep_link(username: str, start: str) -> str:
    """A link that opens the private chat with the bot and sends `/start <start>` there."""
    return f"https://t.me/{username}?start={start}"


def failure(exc: TelegramError) -> DeliveryFailed:
    """What a Telegram error means for the outbox: a blocked or deleted account waits for the
    person; a flood control's wait is honoured for that chat; a refused text fails for good."""
    if isinstance(exc, RetryAfter):
        return DeliveryFailed(exc.message, retry_after=exc.retry_after.total_seconds())
    if isinstance(exc, ChatMigrated):  # a group upgraded to a supergroup: its new id
        return DeliveryFailed(exc.message, moved_to=str(exc.new_chat_id))
    if isinstance(exc, Forbidden) or (
        isinstance(exc, BadRequest) and "chat not found" in exc.message.lower()
    ):
        # blocked by the user, never started, kicked from the group, the chat gone: until they write
        return DeliveryFailed(exc.message, blocked=True)
    if isinstance(exc, BadRequest):  # a text refused: no retry helps
        return DeliveryFailed(exc.message, permanent=True)
    return DeliveryFailed(exc.message)  # network, timeouts, flood control beyond the retries
