"""The neutral messages every channel speaks: an `Incoming` in, `Reply` objects out (the answers
to a message, and what the bot says on its own), whatever the platform.

A button's payload is kept apart from typed text, and says what it answers: `d:<dialog>:<step>:…`
for a dialog step, `v:<poll>:…` for a vote. Each channel renders the rest as it can: an alert on
the pressed button, a message that replaces the one whose button was pressed, a pointer to the
private chat (a deep link on Telegram).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from locales import N_

# the answer to a button that answers nothing any more (an old keyboard) or never did (forged)
STALE = N_("This button is no longer valid.")


@dataclass(frozen=True)
class Window:
    """What the platform lets the bot send an account on its own after this message: at most
    `messages` within `lasts` (WeChat's customer-service messages: 5 within 48 hours of a
    resident's message, 3 within a minute of a menu click or a follow). `renews`: it replaces a
    window still open (a message's does; an event's only one used up or ended)."""

    messages: int
    lasts: timedelta
    renews: bool = True


@dataclass(frozen=True)
class Incoming:
    """One message or button press, as any channel sees it."""

    channel: str
    account_id: str  # the sender's account on the channel
    chat_id: str = ""  # where it was said: the sender's private chat, or a group
    text: str = ""
    payload: str | None = None  # a button pressed, never taken for typed text
    is_group: bool = False
    update_key: str | None = None  # the platform's id of the update: a repeat is handled once
    # whether the sender is an admin of the group, where the channel checked (binding a group)
    group_admin: bool | None = None
    # a photo sent (its caption is the text), JPEG or PNG; never in a log line
    photo: bytes | None = field(default=None, repr=False)
    unreadable: bool = False  # something sent that is neither text nor a photo (a sticker, a voice note)
    chat_title: str | None = None  # a group's name on the platform, kept when it is bound
    edited: bool = False  # a message changed after it was sent: answered, never read again
    window: Window | None = None  # on a platform that limits what the bot sends on its own
    spoken: bool = False  # recognised from speech: a support, vote or rating is read back first


@dataclass(frozen=True)
class Option:
    """A choice: the console prints `[n] label`; a chat shows a button sending `payload`."""

    label: str
    payload: str


@dataclass(frozen=True)
class Reply:
    text: str
    options: tuple[Option, ...] = field(default=())
    alert: bool = False  # shown on the pressed button, not as a message in the chat
    private: bool = False  # to the sender's private chat, not to the group it came from
    replace: bool = False  # takes the place of the message whose button was pressed
    start: str | None = None  # a pointer to the private chat, starting this there (`raise`, `vote_7`)
    retract: bool = False  # the message answered is deleted where the platform lets the bot (a secret choice named in a group)
    photo: bytes | None = field(default=None, repr=False)  # shown with the text (an issue's photo)
    secret: bool = False  # names a secret ballot's choice: said to the voter only, never stored
