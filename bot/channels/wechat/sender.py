"""What the bot says on its own to a resident of the Official Account: customer-service messages.

WeChat lets an Official Account write to a follower only within a window the follower opened: 5
messages within 48 hours of their message, 3 within a minute of a menu click or a follow. The
core counts each account's window (`Window`, kept with the account); what does not fit is held
until the resident writes again, or goes through another reachable account of theirs. Should
WeChat still refuse (45015 out of time, 45047 out of count, 43004 unfollowed), the account is held
the same way.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from wechatpy.exceptions import APILimitedException, WeChatClientException

from bot.channels.wechat.client import Client
from flows.messages import Reply, Window
from flows.outbox import DeliveryFailed, Pace, Recipient, utf8_bytes

CHANNEL = "wechat"
TEXT_MAX = 2048  # bytes of a text message, passive or customer-service
AFTER_MESSAGE = Window(5, timedelta(hours=48))
AFTER_EVENT = Window(3, timedelta(minutes=1), renews=False)
HELD = frozenset({45015, 45047, 43004, 40003})  # until the resident writes again
REFUSED = frozenset({44002, 45002, 40008})  # this text: no retry helps

log = logging.getLogger("yishi.wechat")


def as_text(message: Reply) -> str:
    """A reply as WeChat shows it: a dialog's options numbered (typing the number answers); a
    ballot's choices are in its text already, with the words to send."""
    lines = [message.text] if message.text else []
    steps = [o for o in message.options if o.payload.startswith("d:")]
    lines += [f"[{n}] {o.label}" for n, o in enumerate(steps, start=1)]
    return "\n".join(lines)


class WeChatChannel:
    """The outbox's sender for the Official Account (an `Outward` channel)."""

    name = CHANNEL
    max_length = TEXT_MAX
    quiet_hours = True
    at_once = 4  # residents written to at the same time: a slow answer holds up no other
    measure = staticmethod(utf8_bytes)

    def __init__(self, client: Client) -> None:
        self.client = client

    async def start(self) -> None:
        pass  # the token is fetched when first needed, and shared through the database

    async def stop(self) -> None:
        pass

    def pace(self, recipient: Recipient) -> Pace | None:
        return None  # the window counts what may go

    def edit(self, recipient: Recipient, ref: str, message: Reply) -> None:
        raise DeliveryFailed("a WeChat message cannot be edited", permanent=True)  # never asked: no ref

    def send(self, recipient: Recipient, message: Reply) -> None:
        text = as_text(message)
        try:
            self.client.message.send_text(recipient.chat_id, text)
        except APILimitedException as exc:
            raise DeliveryFailed(f"WeChat {exc.errcode}: {exc.errmsg}", retry_after=60) from None
        except WeChatClientException as exc:
            raise failure(exc) from None


def failure(exc: WeChatClientException) -> DeliveryFailed:
    said = f"WeChat {exc.errcode}: {exc.errmsg}"
    if exc.errcode in HELD:
        return DeliveryFailed(said, blocked=True)
    if exc.errcode in REFUSED:
        return DeliveryFailed(said, permanent=True)
    return DeliveryFailed(said)  # the network, WeChat busy (-1): tried again by backoff
