"""The edges: each channel turns its platform's updates into `Incoming` and sends `Reply`.

`telegram` and `wechatpy` are imported only in this package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bot.config import Config
from flows.outbox import Sender
from locales import N_


class ChannelUnavailable(RuntimeError):
    """A channel cannot start: its token refused (`permanent`: a setting to fix) or its service
    unreachable (for now). A message to translate."""

    def __init__(self, msgid: str, permanent: bool = False, **params: object) -> None:
        super().__init__(msgid.format(**params))
        self.msgid, self.params, self.permanent = msgid, params, permanent


TOKEN_REFUSED = N_("{variable} was refused by the service")
UNREACHABLE = N_("the service at {url} cannot be reached ({error})")


class Outward(Sender, Protocol):
    """A channel the bot sends through on its own (the outbox's deliveries), started and stopped
    with the process."""

    name: str

    async def start(self) -> None: ...
    async def stop(self) -> None: ...


def outward(config: Config, have: Sequence[Outward] = ()) -> list[Outward]:
    """The channels this process sends through: `have` (the one it receives on, started with
    its bot), and each other one this deployment's settings enable. WeCom robots are always
    among them: they are bound in the database, and need no setting."""
    from bot.channels.wecom import WeComRobots

    channels = [*have]
    if config.telegram_token and all(c.name != "telegram" for c in have):
        from bot.channels.telegram import TelegramChannel

        channels.append(TelegramChannel(config))
    channels.append(WeComRobots(config))
    return channels
