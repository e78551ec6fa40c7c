"""python-telegram-bot's `Application` around the core: updates in (long polling here, webhooks
through `bot.web`), each handed to the one dispatcher, the replies sent back.

A person's updates are handled one at a time, in the order Telegram sent them; different
people's at once. The dispatcher is synchronous: it runs in a thread pool sized for the
database (SQLite has one writer, so one thread), off the event loop that keeps receiving.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import BotCommand, BotCommandScopeAllGroupChats, BotCommandScopeAllPrivateChats, Update
from telegram.error import TelegramError
from telegram.ext import Application, BaseUpdateProcessor, ContextTypes, TypeHandler

from bot.app import App
from bot.channels import ChannelUnavailable, outward
from bot.channels.telegram import updates
from bot.channels.telegram.answers import Answering, Where
from bot.channels.telegram.sender import CHANNEL, TelegramChannel
from bot.config import Config
from bot.scheduler import Wakeup
from flows.messages import Incoming, Reply
from handlers.commands import menu
from handlers.dispatch import APOLOGY, redact
from locales import N_, Translator

log = logging.getLogger("yishi.telegram")

# updates in hand at once, most of them waiting for their person's turn or the database: high, so
# that one person's hundreds of queued updates (each holding a slot) never keep others waiting
MAX_CONCURRENT = 4096
# the command lists: the default one (no language) in Chinese, and one for English
MENU_LANGUAGES = ((None, "zh_CN"), ("en", "en"))


class ByPerson(BaseUpdateProcessor):
    """One person's updates in turn, in the order received; different people's at once."""

    def __init__(self, max_concurrent_updates: int = MAX_CONCURRENT) -> None:
        super().__init__(max_concurrent_updates)
        self._turns: dict[int, tuple[asyncio.Lock, int]] = {}  # a lock and how many wait for it

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = updates.key(update) if isinstance(update, Update) else 0
        lock, waiting = self._turns.get(key, (asyncio.Lock(), 0))
        self._turns[key] = (lock, waiting + 1)
        try:
            async with lock:
                await coroutine
        finally:
            lock, waiting = self._turns[key]
            if waiting == 1:
                del self._turns[key]
            else:
                self._turns[key] = (lock, waiting - 1)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


PROMPTS_KEPT = 10_000  # private chats whose last prompt's buttons are remembered (the most recent)


class Edge:
    """The handler of every update: read it, let the dispatcher answer, send the answers.

    `retried`: Telegram sends again an update that was not taken (webhooks), so one that could
    not be read (a photo not fetched) is left for that; with polling it is answered with an
    apology instead. `handled` counts the updates handled (tests and benchmarks wait on it)."""

    def __init__(self, app: App, channel: TelegramChannel, retried: bool = False) -> None:
        self.app, self.channel, self.retried = app, channel, retried
        self.pool = app.dispatch_pool()
        self.t = Translator(app.config.locale)  # for what the edge itself says: the community's language
        self.answering = Answering(channel.bot, channel.markup, self.t)
        # each private chat's last dialog prompt with buttons: taken away once the step is answered
        # by typing (its buttons would answer nothing any more; the core refuses them anyway)
        self.prompts: OrderedDict[int, int] = OrderedDict()
        self.unread: set[int] = set()  # ids of updates that could not be read, for the webhook to refuse
        self.after: Callable[[], None] = lambda: None  # called after each update: the wake-up replans
        self.handled = 0

    async def handle(self, update: Update, context: ContextTypes.DEFAULT_TYPE | None = None) -> None:
        incoming: Incoming | None = None
        try:
            try:
                found = await updates.read(update, self.channel.bot)
            except TelegramError as exc:  # a photo or a member's status not fetched: nothing read or stored
                log.warning("telegram: update %s could not be read: %s", update.update_id, exc.message)
                if self.retried:
                    self.unread.add(update.update_id)
                else:
                    await self._apologise(update)
                return
            if isinstance(found, Incoming):
                incoming = found
                await self._answer(update, found)
            elif isinstance(found, updates.Presence):
                await self._run(self.app.dispatcher.group_presence, CHANNEL, found.chat_id, found.here)
            elif isinstance(found, updates.Moved):
                await self._run(self.app.dispatcher.group_moved, CHANNEL, found.chat_id, found.new_chat_id)
            elif update.callback_query is not None:  # a button that is none of ours: answered all the same
                await update.callback_query.answer()
        except TelegramError as exc:  # Telegram refused or could not be reached: nothing to apologise through
            shown = redact(incoming) if incoming is not None else f"update {update.update_id}"
            log.warning("telegram: %r was not (fully) answered: %s", shown, exc.message)
        except Exception:
            shown = redact(incoming) if incoming is not None else f"update {update.update_id}"
            log.exception("telegram: unexpected error handling %r", shown)
            await self._apologise(update)
        finally:
            self.handled += 1
            self.after()

    async def _run(self, function: Callable[..., Any], *args: Any) -> Any:
        """A blocking call of the core, in the pool sized for the database."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, function, *args)

    async def _answer(self, update: Update, incoming: Incoming) -> None:
        """The dispatcher's replies to an update, sent; the prompts with buttons remembered."""
        chat_id = int(incoming.chat_id)
        replies: list[Reply] = await self._run(self.app.dispatcher.handle, incoming)
        query = update.callback_query
        pressed = query.message.message_id if query is not None and query.message is not None else None
        if pressed is not None and self.prompts.get(chat_id) == pressed:
            del self.prompts[chat_id]  # its buttons are replaced by the answer to the press
        # typed, and read: the step was answered (or asked again, with new buttons) or left
        typed = incoming.payload is None and not incoming.is_group
        if typed and replies and not (incoming.unreadable or incoming.edited) and chat_id in self.prompts:
            await self.answering.take_buttons(chat_id, self.prompts.pop(chat_id))
        message = update.effective_message if query is None else None
        where = Where(
            chat_id,
            int(incoming.account_id),
            message_id=message.message_id if message is not None else None,
            query_id=query.id if query is not None else None,
            pressed_id=pressed,
            is_group=incoming.is_group,
        )
        for chat, message_id, reply in await self.answering.answer(where, replies):
            if chat > 0 and any(o.payload.startswith("d:") for o in reply.options):
                self.prompts[chat] = message_id
                self.prompts.move_to_end(chat)
                if len(self.prompts) > PROMPTS_KEPT:
                    self.prompts.popitem(last=False)

    async def _apologise(self, update: Update) -> None:
        """Said where the update came from, if anywhere can still be reached."""
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(self.t(APOLOGY), show_alert=True)
            elif update.effective_chat is not None and update.effective_message is not None:
                await self.channel.bot.send_message(update.effective_chat.id, self.t(APOLOGY))
        except TelegramError as exc:
            log.warning("telegram: the apology could not be sent either: %s", exc.message)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def application(edge: Edge, polling: bool) -> Application:  # type: ignore[type-arg]
    """The real `Application`, with the channel's bot (and its rate limiter); without an updater
    where webhooks bring the updates."""
    builder = Application.builder().bot(edge.channel.bot).concurrent_updates(ByPerson())
    if not polling:
        builder = builder.updater(None)
    built = builder.build()
    built.add_handler(TypeHandler(Update, edge.handle))
    return built


async def set_commands(channel: TelegramChannel) -> None:
    """The command lists Telegram shows: private chats', groups', in Chinese and in English."""
    bot = channel.bot
    for language, locale in MENU_LANGUAGES:
        t = Translator(locale)
        for scope, in_group in (
            (BotCommandScopeAllPrivateChats(), False),
            (BotCommandScopeAllGroupChats(), True),
        ):
            commands = [BotCommand(name, about[:256]) for name, about in menu(t, in_group)]
            await bot.set_my_commands(commands, scope=scope, language_code=language)


class WebhookSet(RuntimeError):
    """Polling refused: a webhook is set (polling would silently delete it)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


class Polling:
    """`yishi telegram`: long polling, with the clock and the sender in this process."""

    def __init__(self, app: App, config: Config) -> None:
        self.channel = TelegramChannel(config)
        self.wakeup = Wakeup(app, outward(app, [self.channel]))
        self.edge = Edge(app, self.channel)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Until `stop` is set: the updates in hand are answered, and the message being sent is
        marked, before it returns."""
        channel, wakeup, edge = self.channel, self.wakeup, self.edge
        try:
            failed = await wakeup.connect()  # getMe: a refused token stops here
            if failed:
                raise failed[0]
            try:
                info = await channel.bot.get_webhook_info()
                if info.url:
                    raise WebhookSet(info.url)
                await set_commands(channel)
            except TelegramError as exc:
                raise ChannelUnavailable(REFUSED, permanent=True, error=exc.message) from None
            edge.after = wakeup.plan_next
            built = application(edge, polling=True)
            async with built:
                await built.start()
                assert built.updater is not None
                await built.updater.start_polling(allowed_updates=list(updates.ALLOWED_UPDATES))
                wakeup.start()
                log.info("telegram: polling as @%s", channel.bot.username)
                try:
                    await (stop or asyncio.Event()).wait()
                finally:
                    await built.updater.stop()
                    await built.stop()  # the updates in hand are answered first
                    await wakeup.stop()
        finally:
            await wakeup.stop()
            edge.close()


async def poll_until_signalled(app: App, config: Config) -> None:
    """`poll` until Ctrl-C or SIGTERM (a platform stopping the process): the updates in hand are
    answered and the message being sent is marked before it stops."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await Polling(app, config).run(stop)


REFUSED = N_("Telegram refused: {error}")


async def _with_bot(config: Config, work: Callable[[TelegramChannel], Awaitable[Any]]) -> Any:
    """`work` with the bot started (getMe); what Telegram refuses, as a channel unavailable."""
    channel = TelegramChannel(config)
    await channel.start()
    try:
        return await work(channel)
    except TelegramError as exc:
        raise ChannelUnavailable(REFUSED, permanent=True, error=exc.message) from None
    finally:
        await channel.stop()


async def set_webhook(config: Config) -> None:
    """`yishi telegram --set-webhook`: updates of the kinds read are POSTed to the URL with the
    secret; the command lists are set too."""

    async def work(channel: TelegramChannel) -> None:
        await channel.bot.set_webhook(
            config.telegram_webhook_url,
            secret_token=config.telegram_webhook_secret,
            allowed_updates=list(updates.ALLOWED_UPDATES),
        )
        await set_commands(channel)

    await _with_bot(config, work)


async def delete_webhook(config: Config) -> None:
    """`yishi telegram --delete-webhook`: updates wait for polling again."""

    async def work(channel: TelegramChannel) -> None:
        await channel.bot.delete_webhook()

    await _with_bot(config, work)


async def username(config: Config) -> str:
    """The bot's username, from getMe: deep links name it."""

    async def work(channel: TelegramChannel) -> str:
        return channel.bot.username

    return str(await _with_bot(config, work))
