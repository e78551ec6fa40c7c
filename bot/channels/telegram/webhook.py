"""The webhook's half of the Telegram channel: updates POSTed to `yishi serve`, handled by the
same `Edge` as long polling, through an `Application` without an updater."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application

from bot.app import App
from bot.channels.telegram.runner import Edge, application
from bot.channels.telegram.sender import TelegramChannel
from bot.config import Config


class Webhook:
    def __init__(self, edge: Edge, built: Application) -> None:  # type: ignore[type-arg]
        self.edge, self.application = edge, built

    @classmethod
    async def start(cls, app: App, config: Config) -> Webhook:
        """getMe (a refused token stops the process here), then ready for updates."""
        channel = TelegramChannel(config)
        await channel.start()
        edge = Edge(app, channel)
        built = application(edge, polling=False)
        await built.initialize()
        return cls(edge, built)

    async def handle(self, data: object) -> bool:
        """An update's JSON handled, in its person's turn; False when it is not an update."""
        try:
            update = Update.de_json(data, self.application.bot) if isinstance(data, dict) else None
        except (TypeError, ValueError, KeyError, AttributeError):
            update = None
        if update is None:
            return False
        built = self.application
        await built.update_processor.process_update(update, built.process_update(update))
        return True

    async def stop(self) -> None:
        await self.application.shutdown()
        self.edge.close()
