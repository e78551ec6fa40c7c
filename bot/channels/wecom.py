"""WeCom (企业微信) group robots: what a building's, grid's or community's WeChat group reads.

A robot only receives: its webhook URL (bound to a scope by `yishi wechat robot add`) is the
group's chat id, and its `key` a secret, masked wherever it is shown and never in a log line or
an error. A robot takes 20 messages a minute (paced here: what queues up merges into the next
message) and texts of 2,048 UTF-8 bytes (Markdown: 4,096). A robot may be set to Markdown;
plain text is the default, because members on personal WeChat in an external group may not see
WeCom Markdown. Robots are sent to several at a time: a slow one holds up no other.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from bot.config import Config
from flows.errors import Refused
from flows.messages import Reply
from flows.outbox import DeliveryFailed, Pace, Recipient, utf8_bytes
from locales import N_, Translator

CHANNEL = "wecom"
TEXT_MAX, MARKDOWN_MAX = 2048, 4096  # UTF-8 bytes
PACE = Pace(20, 60)
# a robot answers at once or not at all: one that hangs is given up on and tried again later
TIMEOUT = httpx.Timeout(5.0, connect=3.0)
URL_MAX = 512
_LINK = re.compile(r"https?://\S+")

# WeCom's answers (errcode) that are not worth trying again soon
RATE_LIMITED = 45009  # more than 20 a minute: wait out the minute
KEY_INVALID = 93000  # the robot was removed from its group, or its key is wrong
REFUSED = frozenset({40008, 40035, 40058, 44004, 301002})  # this message refused: no retry helps

VOTE_HERE = N_("To vote, send the command above to the Official Account {name}.")
VOTE_HERE_UNNAMED = N_("To vote, send the command above to our Official Account.")

log = logging.getLogger("yishi.wecom")


def mask(url: str) -> str:
    """The robot's URL with its key hidden but for its first four characters (enough to tell two
    robots apart)."""
    parts = urlsplit(url)
    query = [
        (k, v[:4] + "****" if k == "key" else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


def checked_url(url: str) -> str:
    """A robot's webhook URL as WeCom shows it (`https://qyapi.weixin.qq.com/cgi-bin/webhook/
    send?key=…`), or refused saying why (without repeating the key)."""
    url = url.strip()
    parts = urlsplit(url)
    keys = [v for k, v in parse_qsl(parts.query) if k == "key"]
    if parts.scheme not in ("https", "http") or not parts.netloc or len(keys) != 1 or not keys[0]:
        raise Refused(
            "That is not a robot's webhook URL: copy it from the robot's settings in WeCom (…/webhook/send?key=…)."
        )
    if len(url) > URL_MAX:
        raise Refused("That webhook URL is longer than {n} characters.", n=URL_MAX)
    return url


def as_markdown(text: str) -> str:
    """WeCom Markdown: the first line bold, links clickable; the rest as it is."""
    lines = text.split("\n")
    if lines and lines[0].strip() and "*" not in lines[0]:
        lines[0] = f"**{lines[0]}**"
    return "\n".join(_LINK.sub(lambda m: f"[{m.group(0)}]({m.group(0)})", line) for line in lines)


class WeComRobots:
    """The outbox's sender for robots (an `Outward` channel of `yishi clock` and `yishi telegram`)."""

    name = CHANNEL
    max_length = TEXT_MAX
    quiet_hours = True
    at_once = 8
    measure = staticmethod(utf8_bytes)

    def __init__(self, config: Config, transport: httpx.BaseTransport | None = None) -> None:
        self.account_name = config.wechat_account_name
        self.transport = transport
        self.client: httpx.Client | None = None

    async def start(self) -> None:
        self.client = httpx.Client(timeout=TIMEOUT, transport=self.transport, follow_redirects=False)

    async def stop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def pace(self, recipient: Recipient) -> Pace:
        return PACE

    def edit(self, recipient: Recipient, ref: str, message: Reply) -> None:
        raise DeliveryFailed("a robot's messages cannot be edited", permanent=True)  # never asked: no ref

    def body(self, recipient: Recipient, message: Reply) -> dict:
        """The message as the robot takes it. A vote's message (its buttons, or a pointer to the
        private chat) says where to send the ballot: the Official Account."""
        text = message.text
        if message.options or message.start:
            t = Translator(recipient.locale or "")
            hint = t(VOTE_HERE, name=self.account_name) if self.account_name else t(VOTE_HERE_UNNAMED)
            text = f"{text}\n{hint}"
            if utf8_bytes(text) > TEXT_MAX:  # the hint goes on its own rather than past the limit
                text = message.text
        if recipient.markdown:
            marked = as_markdown(text)
            if utf8_bytes(marked) <= MARKDOWN_MAX:
                return {"msgtype": "markdown", "markdown": {"content": marked}}
        return {"msgtype": "text", "text": {"content": text}}

    def send(self, recipient: Recipient, message: Reply) -> None:
        """Post to the robot; what WeCom answers, as the outbox understands it. Nothing said here
        names the URL."""
        if self.client is None:
            raise DeliveryFailed("the robots' sender is not started")
        try:
            response = self.client.post(recipient.chat_id, json=self.body(recipient, message))
        except httpx.TimeoutException:
            raise DeliveryFailed("the robot did not answer in time") from None
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"the robot could not be reached ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise DeliveryFailed(f"the robot answered HTTP {response.status_code}")
        try:
            answer = response.json()
            code, reason = int(answer.get("errcode", -1)), str(answer.get("errmsg", ""))[:200]
        except (ValueError, AttributeError, TypeError):
            raise DeliveryFailed("the robot's answer was not WeCom's") from None
        if code == 0:
            return None
        log.warning("the robot of %s refused a message: %s %s", recipient.name, code, reason)
        raise failure(code, reason)


def failure(code: int, reason: str) -> DeliveryFailed:
    """What a robot's refusal means for the outbox."""
    said = f"WeCom {code}: {reason}"
    if code == RATE_LIMITED:
        return DeliveryFailed(said, retry_after=PACE.seconds)
    if code == KEY_INVALID:  # held until the operator binds the robot again
        return DeliveryFailed(said, blocked=True)
    if code in REFUSED:
        return DeliveryFailed(said, permanent=True)
    return DeliveryFailed(said)
