"""The edges: each channel turns its platform's updates into `Incoming` and sends `Reply`.

`telegram` and `wechatpy` are imported only in this package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from flows.outbox import Sender
from locales import N_

if TYPE_CHECKING:
    from bot.app import App


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


def outward(app: App, have: Sequence[Outward] = ()) -> list[Outward]:
    """The channels this process sends through: `have` (the one it receives on, started with
    its bot), and each other one this deployment's settings enable. WeCom robots are always
    among them: they are bound in the database, and need no setting."""
    from bot.channels.wecom import WeComRobots

    config = app.config
    channels = [*have]
    if config.telegram_token and all(c.name != "telegram" for c in have):
        from bot.channels.telegram import TelegramChannel

        channels.append(TelegramChannel(config))
    if config.wechat_app_id and all(c.name != "wechat" for c in have):
        from bot.channels.wechat import WeChatChannel
        from bot.channels.wechat.client import Client

        channels.append(WeChatChannel(Client(config, app.db, app.clock)))
    channels.append(WeComRobots(config))
    return channels
