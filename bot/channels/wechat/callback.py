"""The Official Account's callback (`GET|POST /wechat` of `yishi serve`): WeChat's messages in,
answers out.

Before anything is parsed, the signature is checked and a timestamp more than five minutes off,
or a body larger than WeChat sends, is refused (403), logged without its content. In safe mode
(`WECHAT_AES_KEY`) the message is decrypted, its own signature checked, and the answer encrypted.

WeChat waits five seconds for an answer, then sends the same message again (three times). So
each message is claimed first, in a statement of its own (`MsgId`; for an event its sender and
`CreateTime`): a retry, even one arriving at another worker while the first is being handled,
finds the claim and is answered `success` at once. The dispatcher then has about four seconds:
its replies are the passive answer (one message: several replies merged, within WeChat's
length); past that, or for what does not fit, `success` now and customer-service messages when
ready — stored to be sent (a secret ballot's choice never: the voter is told it was cast).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from xml.parsers.expat import ExpatError

from sqlalchemy import select
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.events import BaseEvent, ClickEvent, UnsubscribeEvent
from wechatpy.exceptions import InvalidSignatureException, WeChatClientException
from wechatpy.messages import BaseMessage, ImageMessage, TextMessage, VoiceMessage
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from bot.app import App
from bot.channels.wechat.client import Client
from bot.channels.wechat.sender import AFTER_EVENT, AFTER_MESSAGE, CHANNEL, TEXT_MAX, WeChatChannel, as_text
from bot.channels.wechat.speech import heard
from bot.config import Config
from flows import outbox
from flows.messages import Incoming, Reply
from flows.outbox import Recipient, split, utf8_bytes
from handlers.dispatch import APOLOGY, redact
from locales import N_, Translator
from storage.models import Account, HandledUpdate
from storage.rows import insert_new

log = logging.getLogger("yishi.wechat")

SKEW = 300  # seconds a callback's timestamp may be off
BUDGET = 4.0  # seconds for a passive answer, of WeChat's five
SUCCESS = "success"  # WeChat's "nothing to say now"
MENU = {"raise": "/raise", "issues": "/issues", "my": "/my"}  # the menu's click keys
TYPE_IT = N_("I could not make out that voice message; please type it, e.g. 附议 12.")
SECRET_CAST = N_(
    "Your secret ballot is cast. Its choice is not repeated here, where it would be kept to be sent."
)


class NotFromWeChat(Exception):
    """A callback refused before its content was read (403)."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: str = ""
    media_type: str = "text/plain"


class Callback:
    def __init__(self, app: App, config: Config, client: Client | None = None) -> None:
        self.app, self.config, self.budget = app, config, BUDGET
        self.client = client or Client(config, app.db, app.clock)
        self.sender = WeChatChannel(self.client)
        aes = config.wechat_aes_key
        self.crypto = WeChatCrypto(config.wechat_token, aes, config.wechat_app_id) if aes else None
        self.pool = app.dispatch_pool()
        self.t = Translator(config.locale)
        self._turns: dict[str, tuple[asyncio.Lock, int]] = {}

    # --- the HTTP side -----------------------------------------------------------------------

    def _signed(self, query: Mapping[str, str]) -> None:
        timestamp = query.get("timestamp", "")
        try:
            check_signature(
                self.config.wechat_token, query.get("signature", ""), timestamp, query.get("nonce", "")
            )
            off = abs(time.time() - int(timestamp))
        except (InvalidSignatureException, ValueError):
            raise NotFromWeChat("bad signature") from None
        if off > SKEW:
            raise NotFromWeChat(f"timestamp {off:.0f} s off")

    def verify(self, query: Mapping[str, str]) -> Answer:
        """`GET /wechat`: WeChat checks the server address: `echostr` back when signed."""
        try:
            self._signed(query)
        except NotFromWeChat as why:
            log.warning("wechat: a verification was refused (%s)", why)
            return Answer(403, "Forbidden")
        return Answer(200, query.get("echostr", ""))

    async def receive(self, query: Mapping[str, str], body: bytes | None) -> Answer:
        """`POST /wechat`: `body` None when it was larger than WeChat sends."""
        started = time.monotonic()
        try:
            self._signed(query)
            if body is None:
                raise NotFromWeChat("body too large")
            message = self._parse(query, body)
        except NotFromWeChat as why:
            log.warning("wechat: a callback was refused (%s)", why)
            return Answer(403, "Forbidden")
        try:
            return await self._handle(query, message, started)
        except Exception:
            log.exception("wechat: unexpected error handling a %s from %s", message.type, message.source)
            return self._reply(query, message, self.t(APOLOGY))

    def _parse(self, query: Mapping[str, str], body: bytes) -> BaseMessage:
        try:
            if (query.get("encrypt_type") == "aes") != (self.crypto is not None):  # safe mode, or not
                raise NotFromWeChat("encrypted where WECHAT_AES_KEY is not set, or plain where it is")
            if self.crypto is not None:
                body = self.crypto.decrypt_message(
                    body, query.get("msg_signature", ""), query.get("timestamp", ""), query.get("nonce", "")
                ).encode()
            message = parse_message(body)
        except InvalidSignatureException:
            raise NotFromWeChat("bad message signature") from None
        except (ExpatError, KeyError, ValueError, TypeError, AttributeError) as exc:
            raise NotFromWeChat(f"not a WeChat message ({type(exc).__name__})") from None
        if message is None or not message.source:
            raise NotFromWeChat("not a WeChat message (no sender)")
        return message

    def _reply(self, query: Mapping[str, str], message: BaseMessage, text: str) -> Answer:
        xml = TextReply(source=message.target, target=message.source, content=text).render()
        if self.crypto is not None and query.get("encrypt_type") == "aes":
            xml = self.crypto.encrypt_message(xml, query.get("nonce", ""))
        return Answer(200, xml, "application/xml")

    # --- the message --------------------------------------------------------------------------

    async def _handle(self, query: Mapping[str, str], message: BaseMessage, started: float) -> Answer:
        # an event has no MsgId: its sender and time, and what it was (two clicks in one second)
        event = (
            f"{message.source}:{message.time}:{getattr(message, 'event', '')}:{getattr(message, 'key', '')}"
        )
        key = event if isinstance(message, BaseEvent) or not message.id else str(message.id)
        if not await self._run(self._claim, key):
            return Answer(200, SUCCESS)  # a retry: handled, or being handled, already
        if isinstance(message, UnsubscribeEvent):
            await self._run(self.app.dispatcher.account_gone, CHANNEL, message.source)
            return Answer(200, SUCCESS)
        if isinstance(message, VoiceMessage) and not message.recognition:  # nothing heard: typed, please
            await self._run(self.app.dispatcher.wrote, CHANNEL, message.source, AFTER_MESSAGE)
            return self._reply(query, message, self.t(TYPE_IT))
        incoming = await self._incoming(message)
        if incoming is None:
            return Answer(200, SUCCESS)
        lock, waiting = self._turns.get(message.source, (asyncio.Lock(), 0))
        self._turns[message.source] = (lock, waiting + 1)
        async with lock:
            handling = self._start(incoming)
            remaining = self.budget - (time.monotonic() - started)
            try:
                replies = await asyncio.wait_for(asyncio.shield(handling), max(remaining, 0.0))
            except TimeoutError:  # too late for a passive answer: sent when ready
                handling.add_done_callback(lambda done: self._later(incoming, done))
                return Answer(200, SUCCESS)
            finally:
                self._leave(message.source)
        passive, rest = self._fit(replies)
        if rest:
            await self._run(self._send_late, incoming, [], rest)
        return self._reply(query, message, passive) if passive else Answer(200, SUCCESS)

    def _leave(self, source: str) -> None:
        lock, waiting = self._turns[source]
        if waiting == 1:
            del self._turns[source]
        else:
            self._turns[source] = (lock, waiting - 1)

    def _start(self, incoming: Incoming) -> asyncio.Future[list[Reply]]:
        return asyncio.get_running_loop().run_in_executor(self.pool, self.app.dispatcher.handle, incoming)

    async def _run(self, function, *args):  # type: ignore[no-untyped-def]
        return await asyncio.get_running_loop().run_in_executor(self.pool, function, *args)

    def _claim(self, key: str) -> bool:
        """The message is ours to handle: claimed in a transaction of its own, first."""
        with self.app.db.transaction() as session:
            row = {"channel": CHANNEL, "key": key[:128], "handled_at": self.app.clock.now()}
            return insert_new(session, HandledUpdate.__table__, row, ("channel", "key")) == 1

    async def _incoming(self, message: BaseMessage) -> Incoming | None:
        """What the resident said, as the core reads it; None for what asks for no answer."""
        who = {"channel": CHANNEL, "account_id": message.source, "chat_id": message.source}
        if isinstance(message, TextMessage):
            return Incoming(**who, text=message.content or "", window=AFTER_MESSAGE)
        if isinstance(message, VoiceMessage) and message.recognition:
            return Incoming(**who, text=heard(message.recognition), window=AFTER_MESSAGE, spoken=True)
        if isinstance(message, ImageMessage):
            photo = await self._run(self._photo, message.media_id)  # a media id expires in three days
            return Incoming(**who, photo=photo, window=AFTER_MESSAGE, unreadable=photo is None)
        if isinstance(message, ClickEvent):
            command = MENU.get(message.key or "")
            return Incoming(**who, text=command, window=AFTER_EVENT) if command else None
        if message.type == "event":
            if message.event in ("subscribe", "subscribe_scan", "scan"):
                return Incoming(**who, text="/start", window=AFTER_EVENT)
            return None  # a location report, a link opened: nothing to answer
        return Incoming(**who, window=AFTER_MESSAGE, unreadable=True)  # a video, a location, a link

    def _photo(self, media_id: str) -> bytes | None:
        try:
            response = self.client.media.download(media_id)
        except WeChatClientException as exc:
            log.warning("wechat: a picture could not be fetched: %s %s", exc.errcode, exc.errmsg)
            return None
        content = getattr(response, "content", None)
        return content if isinstance(content, bytes) and content else None

    def _fit(self, replies: list[Reply]) -> tuple[str, list[str]]:
        """One passive answer of the replies, and what does not fit in it (to be stored and sent):
        a reply naming a secret choice comes first, so that it is in the passive answer."""
        texts = [as_text(r) for r in sorted(replies, key=lambda r: not r.secret)]
        parts = split("\n\n".join(t for t in texts if t), TEXT_MAX, utf8_bytes)
        return (parts[0], parts[1:]) if parts else ("", [])

    # --- replies too late for a passive answer ---------------------------------------------

    def _later(self, incoming: Incoming, done: asyncio.Future[list[Reply]] | Future[list[Reply]]) -> None:
        try:
            replies = done.result()
        except Exception:
            log.exception("wechat: unexpected error handling %r", redact(incoming))
            replies = [Reply(self.t(APOLOGY))]
        self.pool.submit(self._send_late, incoming, replies, []).add_done_callback(self._sent_late)

    def _sent_late(self, done: Future[None]) -> None:
        if done.exception() is not None:
            log.error("wechat: late replies could not be queued", exc_info=done.exception())

    def _send_late(self, incoming: Incoming, replies: list[Reply], texts: list[str]) -> None:
        """Replies as customer-service messages: stored and sent by the outbox for a resident of
        the register (a secret choice replaced by words that keep it), else sent now."""
        kept = [self.t(SECRET_CAST) if r.secret else as_text(r) for r in replies]
        parts = split("\n\n".join(t for t in [*kept, *texts] if t), TEXT_MAX, utf8_bytes)
        if not parts:
            return
        with self.app.db.transaction() as session:
            person = session.scalar(
                select(Account.person_id).where(
                    Account.channel == CHANNEL, Account.external_id == incoming.account_id
                )
            )
            if person is not None:
                for part in parts:
                    outbox.notify_reply(session, person, self.app.clock.now(), part)
        if person is not None:
            self.app.deliver({CHANNEL: self.sender})
            return
        recipient = Recipient(CHANNEL, incoming.account_id, incoming.account_id, None, None)
        for part in parts:  # someone not in the register yet: nothing of theirs to keep
            try:
                self.sender.send(recipient, Reply(part))
            except outbox.DeliveryFailed as exc:
                log.warning("wechat: a late reply to someone not in the register was not sent: %s", exc)
                return

    def close(self) -> None:
        self.pool.shutdown(wait=True)
