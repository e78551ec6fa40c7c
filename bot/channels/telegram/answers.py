"""The core's answers to one update, as Bot API calls.

A pressed button is answered first and once (`answerCallbackQuery`, within Telegram's time
limit): with the first alert among the replies, shown on the button, or with nothing. A reply
that replaces the pressed message edits it (no text: only its buttons are taken away). A private
reply goes to the person's own chat; where they never started the bot, the group is told so,
with a link that starts it. A retracted message is deleted where the bot may. Long texts go in
parts of at most 4,096 UTF-16 units, a photo with its text as the caption where it fits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from telegram import Bot, InlineKeyboardMarkup
from telegram.constants import CallbackQueryLimit, MessageLimit
from telegram.error import BadRequest, Forbidden, TelegramError

from bot.channels.telegram.sender import unchanged
from flows.messages import Reply
from flows.outbox import split, utf16_units
from locales import N_, Translator

log = logging.getLogger("yishi.telegram")

ALERT_MAX = CallbackQueryLimit.ANSWER_CALLBACK_QUERY_TEXT_LENGTH  # 200 characters on a button
NOT_STARTED = N_(
    "I cannot write to you privately before you start a chat with me: press the button below, then try again."
)


@dataclass(frozen=True)
class Where:
    """What an update came from: its chat, its sender, the message (or pressed button's message)."""

    chat_id: int
    user_id: int
    message_id: int | None = None  # the message sent (to retract it)
    query_id: str | None = None  # the button press to answer
    pressed_id: int | None = None  # the message whose button was pressed
    is_group: bool = False


class Answering:
    """Sends one update's replies; `markup` renders a reply's buttons (the channel's)."""

    def __init__(
        self, bot: Bot, markup: Callable[[Reply], InlineKeyboardMarkup | None], t: Translator
    ) -> None:
        self.bot, self.markup, self.t = bot, markup, t

    async def answer(self, where: Where, replies: list[Reply]) -> list[tuple[int, int, Reply]]:
        """Send them; (chat, message id, reply) of each message sent with buttons. One that
        Telegram refuses is logged and the others still go (the next prompt of a dialog)."""
        replies = list(replies)
        if where.query_id is not None and replies:  # none: a repeat of a press answered already
            alert = next((r for r in replies if r.alert), None)
            await self._answer_query(where, alert)
            if alert is not None and utf16_units(alert.text) <= ALERT_MAX:
                replies.remove(alert)
        shown: list[tuple[int, int, Reply]] = []
        for reply in replies:
            try:
                sent = await self._one(where, reply)
            except TelegramError as exc:
                log.warning("telegram: an answer in %s was refused: %s", where.chat_id, exc.message)
                continue
            if sent is not None and reply.options:
                shown.append((*sent, reply))
        return shown

    async def _one(self, where: Where, reply: Reply) -> tuple[int, int] | None:
        """One reply; (chat, message id) where it went as a new message."""
        if reply.retract and where.message_id is not None:
            await self._retract(where)
        if reply.replace and where.pressed_id is not None:
            await self._replace(where, reply)
            return None
        if not reply.text and reply.photo is None:
            return None
        to_person = reply.private or reply.alert  # an alert too long for the button: to the presser
        chat = where.user_id if to_person else where.chat_id
        try:
            return chat, await self._send(chat, reply)
        except (Forbidden, BadRequest) as exc:
            if not (to_person and where.is_group):
                raise
            log.info("telegram: cannot write privately to %s (%s): told in the group", chat, exc.message)
            pointer = Reply(self.t(NOT_STARTED), start="help")
            return where.chat_id, await self._send(where.chat_id, pointer)

    async def _answer_query(self, where: Where, alert: Reply | None) -> None:
        assert where.query_id is not None
        text = None
        if alert is not None:
            text = alert.text if utf16_units(alert.text) <= ALERT_MAX else self.t("See my private message.")
        try:
            await self.bot.answer_callback_query(where.query_id, text=text, show_alert=alert is not None)
        except BadRequest as exc:  # too late (the query expired while waiting): the rest still goes
            log.warning("telegram: a button press could not be answered: %s", exc.message)

    async def _retract(self, where: Where) -> None:
        """Delete the message answered (a secret choice typed in a group), where the bot is an admin."""
        assert where.message_id is not None
        try:
            await self.bot.delete_message(where.chat_id, where.message_id)
        except TelegramError as exc:
            log.info(
                "telegram: message %s in %s not deleted: %s", where.message_id, where.chat_id, exc.message
            )

    async def _replace(self, where: Where, reply: Reply) -> None:
        """The pressed message edited: its text and buttons, or (no text) its buttons taken away."""
        assert where.pressed_id is not None
        try:
            if reply.text:
                await self.bot.edit_message_text(
                    split(reply.text, MessageLimit.MAX_TEXT_LENGTH)[0],
                    chat_id=where.chat_id,
                    message_id=where.pressed_id,
                    reply_markup=self.markup(reply),
                )
            else:
                await self.bot.edit_message_reply_markup(where.chat_id, where.pressed_id, reply_markup=None)
        except BadRequest as exc:
            if not unchanged(exc):  # pressed twice: already as it should be
                raise

    async def take_buttons(self, chat_id: int, message_id: int) -> None:
        """An earlier prompt's buttons removed: its step was answered by typing, or left."""
        try:
            await self.bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)
        except BadRequest as exc:  # deleted by the person, or already without them
            log.debug("telegram: buttons of %s not removed: %s", message_id, exc.message)

    async def _send(self, chat_id: int, reply: Reply) -> int:
        """The message id of the last part (which carries the buttons)."""
        markup: InlineKeyboardMarkup | None = self.markup(reply)
        text = reply.text
        if reply.photo is not None:
            fits = utf16_units(text) <= MessageLimit.CAPTION_LENGTH
            sent = await self.bot.send_photo(
                chat_id, reply.photo, caption=text if fits else None, reply_markup=markup if fits else None
            )
            if fits:
                return sent.message_id
        parts = split(text, MessageLimit.MAX_TEXT_LENGTH)
        last = 0
        for n, part in enumerate(parts, start=1):
            message = await self.bot.send_message(
                chat_id, part, reply_markup=markup if n == len(parts) else None
            )
            last = message.message_id
        return last
