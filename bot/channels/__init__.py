"""The edges: each channel turns its platform's updates into `Incoming` and sends `Reply`.

`telegram` and `wechatpy` are imported only in this package.
"""

from __future__ import annotations

from typing import Protocol

from bot.config import Config
from bot.i18n import N_
from storage.models import Account


class ChannelUnavailable(RuntimeError):
    """A channel cannot start (its token refused, its service unreachable): a message to translate."""

    def __init__(self, msgid: str, **params: object) -> None:
        super().__init__(msgid.format(**params))
        self.msgid, self.params = msgid, params


TOKEN_REFUSED = N_("{variable} was refused by the service")
UNREACHABLE = N_("the service at {url} cannot be reached ({error})")


class Outward(Protocol):
    """A channel the bot sends through on its own (the outbox's deliveries)."""

    name: str

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def send(self, account: Account, text: str) -> None: ...


def outward(config: Config) -> list[Outward]:
    """The channels this deployment's settings enable, for the sender of `yishi clock`."""
    channels: list[Outward] = []
    if config.telegram_token:
        from bot.channels.telegram import TelegramChannel

        channels.append(TelegramChannel(config))
    return channels
