"""Telegram through python-telegram-bot 22: the outbox's messages to residents' private chats.

A Telegram account's external id is the resident's user id, which is also the id of their
private chat with the bot. Sending runs on the process's event loop; the outbox's sender
calls `send` from its worker thread and waits for the answer, so a message is marked sent
only once Telegram has taken it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import CancelledError
from concurrent.futures import TimeoutError as FutureTimeout

# durations as timedelta, as python-telegram-bot 22.2+ asks of new code (else each flood-control
# answer warns that the old int/float form is deprecated); nothing here reads one
os.environ.setdefault("PTB_TIMEDELTA", "true")

from telegram.constants import MessageLimit
from telegram.error import BadRequest, Forbidden, InvalidToken, TelegramError
from telegram.ext import AIORateLimiter, ExtBot
from telegram.request import HTTPXRequest

from bot.channels import TOKEN_REFUSED, UNREACHABLE, ChannelUnavailable
from bot.config import Config
from flows.outbox import DeliveryFailed, Recipient

CHANNEL = "telegram"
DEFAULT_API_URL = "https://api.telegram.org/bot"
# one part, flood-control waits included, ends well within the outbox's five-minute lease; a
# send given up at this point may still have reached Telegram, so it is sent again at the retry
SEND_TIMEOUT = 120.0

log = logging.getLogger("yishi.telegram")


class TelegramChannel:
    name = CHANNEL
    max_length = MessageLimit.MAX_TEXT_LENGTH  # longer texts (a digest) go in parts, cut at line ends

    def __init__(self, config: Config) -> None:
        self.api_url = config.telegram_api_url or DEFAULT_API_URL
        self.bot = ExtBot(
            config.telegram_token,
            base_url=self.api_url,
            request=HTTPXRequest(connect_timeout=5, read_timeout=10, write_timeout=10, pool_timeout=5),
            rate_limiter=AIORateLimiter(max_retries=3),
        )
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

    def send(self, recipient: Recipient, text: str) -> None:
        """The outbox's sender (called from a worker thread while the loop runs)."""
        if self.loop is None:
            raise DeliveryFailed("the Telegram channel is not started")
        try:
            chat_id = int(recipient.external_id)
        except ValueError:
            raise DeliveryFailed(
                f"not a Telegram chat id: {recipient.external_id!r}", permanent=True
            ) from None
        future = asyncio.run_coroutine_threadsafe(self._send(chat_id, text), self.loop)
        try:
            future.result(SEND_TIMEOUT)
        except FutureTimeout:
            future.cancel()
            raise DeliveryFailed("Telegram did not answer in time") from None
        except CancelledError:  # the process is stopping
            raise DeliveryFailed("sending was cancelled") from None

    async def _send(self, chat_id: int, text: str) -> None:
        try:
            await self.bot.send_message(chat_id=chat_id, text=text)
        except (Forbidden, BadRequest) as exc:  # blocked, never started, chat gone, text refused: final
            raise DeliveryFailed(exc.message, permanent=True) from None
        except TelegramError as exc:  # network, timeouts, flood control beyond the retries
            raise DeliveryFailed(exc.message) from None
