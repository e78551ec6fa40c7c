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
    """The `Application` (no updater) and its edge, for `bot.web` to hand each POST to."""

    def __init__(self, edge: Edge, built: Application) -> None:  # type: ignore[type-arg]
        self.edge, self.application = edge, built

    @classmethod
    async def start(cls, app: App, config: Config) -> Webhook:
        """getMe (a refused token stops the process here), then ready for updates."""
        channel = TelegramChannel(config)
        await channel.start()
        edge = Edge(app, channel, retried=True)
        built = application(edge, polling=False)
        await built.initialize()
        return cls(edge, built)

    async def handle(self, data: object) -> int:
        """An update's JSON handled, in its person's turn: the HTTP status to answer. 400: not an
        update; 503: it could not be read (a photo not fetched), so Telegram sends it again."""
        try:
            update = Update.de_json(data, self.application.bot) if isinstance(data, dict) else None
        except Exception:  # whatever de_json makes of malformed fields: not an update we can read
            update = None
        if update is None:
            return 400
        built = self.application
        await built.update_processor.process_update(update, built.process_update(update))
        if update.update_id in self.edge.unread:
            self.edge.unread.discard(update.update_id)
            return 503
        return 200

    async def stop(self) -> None:
        """After the updates in hand (the web server has stopped taking new ones)."""
        await self.application.shutdown()
        self.edge.close()
