"""A Telegram update as the core reads it: an `Incoming`, a change to a group (`Presence`,
`Moved`), or nothing, on purpose.

Read: text and commands, button presses, photos in a private chat (the largest size up to 1280
px, its bytes fetched with `getFile`), and, in a group, commands addressed to this bot
(`/cmd@this_bot`, or plain `/cmd` where the bot sees it). Left alone: channel posts, messages
from other bots, commands to other bots, a group's service messages and its chatter. Stickers,
voice notes, locations and files in a private chat are answered as unreadable, and an edited
message as edited: nothing is read twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from telegram import Bot, Message, PhotoSize, Update
from telegram.constants import ChatMemberStatus, ChatType

from bot.channels.telegram.sender import CHANNEL
from flows.issues import PHOTO_MAX
from flows.messages import Incoming
from handlers.commands import GROUP_ONLY
from handlers.dispatch import parse

PHOTO_SIDE = 1280  # px: the largest size kept of a photo
ADMIN = (ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR)
HERE = (ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.RESTRICTED)
GROUPS = (ChatType.GROUP, ChatType.SUPERGROUP)
_ADDRESSED = re.compile(r"^/[A-Za-z0-9_]+@([A-Za-z0-9_]+)")
# what the bot asks Telegram for: anything else is not sent to it
ALLOWED_UPDATES = ("message", "edited_message", "callback_query", "my_chat_member")


@dataclass(frozen=True)
class Presence:
    """The bot was added to a group (`here`), or removed from it."""

    chat_id: str
    here: bool


@dataclass(frozen=True)
class Moved:
    """A group upgraded to a supergroup: its new chat id."""

    chat_id: str
    new_chat_id: str


Read = Incoming | Presence | Moved | None


def key(update: Update) -> int:
    """Whose updates are handled in the order sent: a person's (wherever they write), else a chat's."""
    if update.effective_user is not None:
        return update.effective_user.id
    return update.effective_chat.id if update.effective_chat is not None else 0


async def read(update: Update, bot: Bot) -> Read:
    if update.callback_query is not None:
        return _pressed(update)
    if update.my_chat_member is not None:
        change = update.my_chat_member
        if change.chat.type not in GROUPS:
            return None  # a private chat blocked or restarted: the outbox finds out when it sends
        return Presence(str(change.chat.id), change.new_chat_member.status in HERE)
    if update.edited_message is not None:
        edited = update.edited_message
        if edited.chat.type != ChatType.PRIVATE or _from_other_bot(edited):
            return None
        return Incoming(
            CHANNEL, str(edited.chat.id), str(edited.chat.id), update_key=str(update.update_id), edited=True
        )
    if update.message is not None:
        return await _message(update, update.message, bot)
    return None  # channel posts, inline queries, polls, …: not asked for, not read


def _from_other_bot(message: Message) -> bool:
    return message.from_user is None or message.from_user.is_bot


def _pressed(update: Update) -> Incoming | None:
    query = update.callback_query
    assert query is not None
    message = query.message
    if message is None or query.data is None:  # an inline message's, or a game's: not Yishi's buttons
        return None
    chat = message.chat
    return Incoming(
        CHANNEL,
        str(query.from_user.id),
        str(chat.id),
        payload=query.data,
        is_group=chat.type in GROUPS,
        update_key=str(update.update_id),
        chat_title=chat.title,
    )


async def _message(update: Update, message: Message, bot: Bot) -> Read:
    chat = message.chat
    if message.migrate_to_chat_id is not None:
        return Moved(str(chat.id), str(message.migrate_to_chat_id))
    if chat.type not in (ChatType.PRIVATE, *GROUPS) or _from_other_bot(message):
        return None
    assert message.from_user is not None
    group = chat.type in GROUPS
    text = message.text or message.caption or ""
    if group:
        return await _in_group(update, message, text, bot)
    photo = await _photo(message.photo, bot) if message.photo else None
    if not text and photo is None and message.effective_attachment is None:
        return None  # a service message (a pinned message, …): nothing said
    return Incoming(
        CHANNEL,
        str(message.from_user.id),
        str(chat.id),
        text,
        is_group=False,
        update_key=str(update.update_id),
        photo=photo,
        unreadable=photo is None and not text,
    )


async def _in_group(update: Update, message: Message, text: str, bot: Bot) -> Incoming | None:
    """A command to this bot in a group; with `/linkgroup`, whether its sender is an admin."""
    addressed = _ADDRESSED.match(text)
    if not text.startswith("/") or (addressed and addressed.group(1).lower() != (bot.username or "").lower()):
        return None  # chatter, or a command to another bot
    assert message.from_user is not None
    parsed = parse(text.split(maxsplit=1)[0], is_group=True)
    admin = None
    if parsed is not None and parsed.command is not None and parsed.command.name in GROUP_ONLY:
        member = await bot.get_chat_member(message.chat.id, message.from_user.id)
        admin = member.status in ADMIN
    return Incoming(
        CHANNEL,
        str(message.from_user.id),
        str(message.chat.id),
        text,
        is_group=True,
        update_key=str(update.update_id),
        group_admin=admin,
        chat_title=message.chat.title,
    )


async def _photo(sizes: tuple[PhotoSize, ...], bot: Bot) -> bytes | None:
    """The bytes of the largest size up to PHOTO_SIDE px across; None where every size is too big
    (larger than the core keeps: not fetched)."""
    fitting = [
        s
        for s in sizes
        if max(s.width, s.height) <= PHOTO_SIDE and (s.file_size is None or s.file_size <= PHOTO_MAX)
    ]
    if not fitting:
        return None
    largest = max(fitting, key=lambda s: s.width * s.height)
    file = await bot.get_file(largest.file_id)
    return bytes(await file.download_as_bytearray())
