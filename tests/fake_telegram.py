"""A fake Telegram Bot API: a real HTTP server on 127.0.0.1 that python-telegram-bot talks to.

It checks what it receives as the Bot API does, and refuses with the descriptions the Bot API
server (tdlib/telegram-bot-api) uses, in the API's own shape: `{"ok": true, "result": …}` or
`{"ok": false, "error_code": …, "description": …, "parameters": {…}}`.

- The request: the token in the path (401), a known method, any case (404); parameters from the
  query string, a form, a JSON body or multipart/form-data (uploads).
- The chat: a private chat is a user who started the bot (`chats`), not `blocked` since (403) nor
  one of the `strangers` who never did (403); a group made with `group()`, where a bot that was
  kicked is refused (403) and a group upgraded with `migrate()` answers 400 with
  `parameters.migrate_to_chat_id`.
- Messages: a text of 1 to 4,096 UTF-16 units, a caption up to 1,024, a known parse_mode; inline
  buttons each with a text and either a callback_data of 1 to 64 bytes (longer:
  BUTTON_DATA_INVALID) or a public http(s) or tg URL. Edits of the bot's own messages only, and
  not with the very same text and buttons ("message is not modified"); deletions of its own
  messages, of incoming ones in private chats, of any in a group where it is an administrator.
- Callback answers: to a query the fake issued, once, within `callback_timeout` seconds.
- Photos: uploaded JPEG or PNG bytes (their size read from the header) or a file_id the fake
  issued; `getFile`, and the bytes downloadable at /file/bot<token>/<file_path>.
- Limits, as 429 "Too Many Requests: retry after N": 20 messages a minute to a group, an
  optional overall rate (`overall_per_second`), and `flood`, the next N messages refused; sent
  messages, photos and text edits count. `unavailable` answers the next N requests 502.
- Updates: `getUpdates` long polling (offset, limit, timeout, allowed_updates: updates of a type
  not asked for are dropped as they arrive, as Telegram does), refused (409) while a webhook is
  set and ended (409) by a newer getUpdates or a setWebhook; with a webhook set and
  `deliver_webhooks`, updates are POSTed to it with the secret header, and retried.
- Commands: 1 to 32 characters of a-z, 0-9 and _, descriptions of 1 to 256, a language code of
  two letters or none, per scope.

Tests make what people do (`user`, `group`, `say`, `press`, `send_photo_from`, `block`,
`remove_bot`, `migrate`, `incoming` and `inject` for anything else, `post_update` to a webhook;
`jpeg` makes a picture's bytes) and read what the bot did (`sent`, `messages`, `answers`,
`commands`, `webhook`, `allowed_updates`, `deliveries`, `texts_to`, `buttons_of`, `last_to`).
`on_message` is a hook called with the count of messages accepted so far, before the answer goes
back: a test can kill the sender there, with the message received but its answer still in flight.
"""

from __future__ import annotations

import contextlib
import copy
import http
import json
import math
import re
import struct
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

TOKEN = "123456:TEST-token-for-the-fake"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "议事", "username": "yishi_test_bot"}
MAX_TEXT = 4096  # UTF-16 units
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64  # bytes of UTF-8
GROUP_PER_MINUTE = 20
LONG_POLL_MAX = 50  # seconds: a longer timeout is cut to this
PHOTO_LIMITS = (90, 320, 1280)  # the longest side of each PhotoSize Telegram makes, at most
STATUSES = ("creator", "administrator", "member", "left", "kicked")
DEFAULT_EXCLUDED = {"chat_member", "message_reaction", "message_reaction_count"}  # unless asked for
RESIDENT = "resident"  # the first name of a private chat's user the fake was not told about
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same"
    " as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
COMMAND = re.compile(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?")
BOT_COMMAND = re.compile(r"[a-z0-9_]+")
SECRET = re.compile(r"[A-Za-z0-9_-]*")
READ, EDIT, WRITE, MEMBERS = "read", "edit", "write", "members"  # what a method needs of a chat

JSON = dict[str, Any]


class ApiError(Exception):
    """A refusal, as the Bot API words it."""

    def __init__(self, code: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters

    def payload(self) -> JSON:
        answer: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters is not None:
            answer["parameters"] = self.parameters
        return answer


def bad(description: str, parameters: JSON | None = None) -> ApiError:
    return ApiError(400, f"Bad Request: {description}", parameters)


def forbidden(description: str) -> ApiError:
    return ApiError(403, f"Forbidden: {description}")


def too_many(retry_after: int) -> ApiError:
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})


def conflict(description: str) -> ApiError:
    return ApiError(409, f"Conflict: {description}")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def image_size(data: bytes) -> tuple[int, int] | None:
    """The width and height a JPEG's or PNG's header gives, or None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if not data.startswith(b"\xff\xd8"):
        return None
    at = 2
    while at + 9 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start of frame
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        at += 2 + struct.unpack(">H", data[at + 2 : at + 4])[0]
    return None


def jpeg(width: int, height: int) -> bytes:
    """Bytes that read as a JPEG of this size: a header only (the fake never decodes pixels)."""
    frame = struct.pack(">BHHB3B", 8, height, width, 1, 1, 0x11, 0)
    return b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", len(frame) + 2) + frame + b"\xff\xd9"


def check_button_url(url: str) -> None:
    """As Telegram: http, https or tg, to a public host (not localhost, not a bare name)."""
    scheme, _, rest = url.partition("://")
    if not rest:
        scheme, rest = "http", url
    if scheme.lower() not in ("http", "https", "tg"):
        raise bad(f"inline keyboard button URL '{url}' is invalid: Unsupported URL protocol")
    host = urlsplit(f"{scheme}://{rest}").hostname or ""
    if scheme.lower() != "tg" and ("." not in host or host.endswith(".localhost")):
        raise bad(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")


def check_webhook_url(url: str) -> None:
    """An HTTPS URL on one of Telegram's ports; plain http to this machine is let through for tests."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad("invalid webhook URL specified")
    if parts.hostname in ("127.0.0.1", "localhost", "::1"):
        return
    if parts.scheme != "https":
        raise bad("bad webhook: An HTTPS URL must be provided for webhook")
    if (parts.port or 443) not in (80, 88, 443, 8443):
        raise bad("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")


def check_language(code: str) -> None:
    if code and not (len(code) == 2 and code.isascii() and code.isalpha() and code.islower()):
        raise bad("invalid language code specified")


def bot_commands(raw: object) -> list[JSON]:
    """A setMyCommands list, trimmed and checked as Telegram does."""
    if not isinstance(raw, list):
        raise bad("expected an Array of BotCommand")
    if len(raw) > 100:
        raise bad("BOT_COMMANDS_TOO_MUCH")
    commands = []
    for item in raw:
        if not isinstance(item, dict):
            raise bad("can't parse BotCommand: expected an Object")
        for name in ("command", "description"):
            if not isinstance(item.get(name), str):
                raise bad(f"can't parse BotCommand: Can't find field \"{name}\"")
        command, description = item["command"].strip().removeprefix("/"), item["description"].strip()
        if not command:
            raise bad("command must be non-empty")
        if len(command) > 32:
            raise bad("command length must not exceed 32")
        if not description:
            raise bad("command description must be non-empty")
        if len(description) > 256:
            raise bad("command description length must not exceed 256")
        if not BOT_COMMAND.fullmatch(command):
            raise bad("BOT_COMMAND_INVALID")
        commands.append({"command": command, "description": description})
    return commands


def scope_key(scope: object) -> str:
    """How `commands` names a scope: its type, and for one chat (or member) their ids:
    "default", "all_private_chats", "chat:-100123", "chat_member:-100123:42"."""
    if scope is None:
        return "default"
    if not isinstance(scope, dict):
        raise bad("can't parse BotCommandScope: BotCommandScope must be an Object")
    kind = scope.get("type")
    if not isinstance(kind, str):
        raise bad("can't parse BotCommandScope: Can't find field \"type\"")
    if kind in ("default", "all_private_chats", "all_group_chats", "all_chat_administrators"):
        return kind
    if kind not in ("chat", "chat_administrators", "chat_member"):
        raise bad("can't parse BotCommandScope: Unsupported type specified")
    if not str(scope.get("chat_id", "")):
        raise bad("can't parse BotCommandScope: Empty chat_id specified")
    if kind != "chat_member":
        return f"{kind}:{scope['chat_id']}"
    if not isinstance(scope.get("user_id"), int) or scope["user_id"] <= 0:
        raise bad("can't parse BotCommandScope: Invalid user_id specified")
    return f"chat_member:{scope['chat_id']}:{scope['user_id']}"


def inline_keyboard(markup: JSON | None) -> JSON | None:
    """The part of a reply markup a message shows: its inline keyboard, if it has buttons."""
    rows = (markup or {}).get("inline_keyboard")
    return {"inline_keyboard": rows} if rows else None


def check_markup(markup: object) -> None:
    if not isinstance(markup, dict):
        raise bad("object expected as reply markup")
    rows = markup.get("inline_keyboard", [])
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
    for button in (button for row in rows for button in row):
        if not isinstance(button, dict):
            raise bad("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
        if not isinstance(button.get("text"), str):
            raise bad("can't parse inline keyboard button: Can't find field \"text\"")
        url, data = button.get("url"), button.get("callback_data")
        if url:
            check_button_url(str(url))
        elif data:
            if len(str(data).encode()) > MAX_CALLBACK_DATA:
                raise bad("BUTTON_DATA_INVALID")
        elif not set(button) - {"text", "url", "callback_data", "icon_custom_emoji_id", "style"}:
            raise bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")


@dataclass
class Params:
    """A request's parameters, read as the Bot API reads them: each as its method expects."""

    values: dict[str, Any]
    files: dict[str, bytes]

    def text(self, name: str) -> str:
        value = self.values.get(name)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    def number(self, name: str, default: int = 0) -> int:
        value = self.text(name)
        if not value:
            return default
        with contextlib.suppress(ValueError):
            return int(float(value)) if "." in value else int(value)
        return 0

    def flag(self, name: str) -> bool:
        return self.text(name).lower() in ("true", "1")

    def json(self, name: str, what: str) -> Any:
        """A JSON-serialized parameter (decoded already when the body was JSON), or None."""
        value = self.values.get(name)
        if not isinstance(value, str):
            return value
        if not value:
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise bad(f"can't parse {what} JSON object") from None

    def file(self, name: str) -> bytes | None:
        """An uploaded file: by its own name, or where the parameter says attach://<part>."""
        value = self.text(name)
        return self.files.get(value.removeprefix("attach://") if value.startswith("attach://") else name)


@dataclass
class Group:
    """A group or supergroup: its members' statuses (STATUSES) by user id, and the bot's."""

    id: int
    type: str
    title: str
    members: dict[int, str]
    bot_status: str
    migrated_to: int | None = None

    def chat(self) -> JSON:
        return {"id": self.id, "type": self.type, "title": self.title}


@dataclass
class FakeTelegram:
    token: str = TOKEN
    chats: set[int] = field(default_factory=set)  # users who have started the bot
    blocked: set[int] = field(default_factory=set)  # users who have blocked it since
    sent: list[tuple[int, str]] = field(default_factory=list)  # each text message sent, (chat, text)
    unavailable: int = 0  # the next this many requests are answered 502 Bad Gateway, as in an outage
    flood: int = 0  # the next this many messages are refused by flood control: retry after 1 s
    strangers: set[int] = field(default_factory=set)  # users who never started the bot
    on_message: Callable[[int], None] | None = None
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    overall_per_second: float | None = None  # messages to all chats, beyond which: retry after 1
    callback_timeout: float = 15.0  # seconds to answer a button press in
    privacy_mode: bool = True  # in groups where it is no admin, the bot gets commands and mentions only
    deliver_webhooks: bool = False  # POST updates to the webhook set, rather than keep them
    webhook_retries: int = 3  # further tries of an update the webhook did not take (not 2xx); then dropped
    webhook_retry_delay: float = 0.1  # seconds before the first of them, doubling
    users: dict[int, JSON] = field(default_factory=dict)  # the API's User, by id
    groups: dict[int, Group] = field(default_factory=dict)
    messages: list[JSON] = field(default_factory=list)  # what the bot did to messages, in order
    answers: list[JSON] = field(default_factory=list)  # its answers to button presses
    commands: dict[tuple[str, str], list[JSON]] = field(default_factory=dict)  # (scope_key, language)
    webhook: JSON | None = None  # url, secret_token, max_connections, allowed_updates, drop_pending_updates
    allowed_updates: list[str] = field(default_factory=list)  # as last given; empty: Telegram's default
    deliveries: list[tuple[int, int | None]] = field(default_factory=list)  # (update_id, HTTP status)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)  # updates queued, a webhook set, a poll begun
        self._updates: list[JSON] = []  # not yet confirmed (getUpdates) or delivered (webhook)
        self._store: dict[int, JSON] = {}  # each message in any chat, as the API shows it, by id
        self._files: dict[str, JSON] = {}  # the API's File, by file_id
        self._downloads: dict[str, bytes] = {}  # by file_path
        self._photos: dict[str, list[JSON]] = {}  # a photo's PhotoSize list, by each of its file_ids
        self._queries: dict[str, JSON] = {}  # callback queries issued: message, time, answered
        self._recent: deque[float] = deque()  # when messages were sent, for the overall rate
        self._to_group: dict[int, deque[float]] = {}  # likewise for each group
        self._accepted = 0  # new messages, for `on_message`
        self._ids = {"message": 0, "update": 500_000_000, "file": 0, "query": 4_830_000_000_000_000_000}
        self._poll = 0  # getUpdates calls begun: a newer one ends an older one's wait
        self._last_error: tuple[int, str] | None = None  # the webhook's, for getWebhookInfo
        self._closing = False
        self.enqueued = 0  # updates queued for the bot so far (of kinds it asked for)
        self.fetched: list[str] = []  # the file_ids the bot asked getFile for, in order

    # ---- what tests read

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def file_url(self) -> str:
        """The bot's base_file_url: downloads are at f"{file_url}{token}/{file_path}"."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    @property
    def bot(self) -> JSON:
        """The bot as a User: its id is the token's first part."""
        head = self.token.split(":")[0]
        return BOT_USER | {"id": int(head) if head.isdigit() else BOT_USER["id"]}

    def texts_to(self, chat_id: int) -> list[str]:
        with self.lock:
            return [text for chat, text in self.sent if chat == chat_id]

    @property
    def unanswered(self) -> list[str]:
        """The button presses the bot has not answered (a second answer is refused, so none is twice)."""
        with self.lock:
            return [query_id for query_id, query in self._queries.items() if not query["answered"]]

    def buttons_of(self, message_id: int) -> list[list[JSON]]:
        """The inline keyboard's rows of a message as it is now; KeyError if there is none such."""
        with self.lock:
            return copy.deepcopy(self._store[message_id].get("reply_markup", {}).get("inline_keyboard", []))

    def last_to(self, chat_id: int) -> JSON | None:
        """The last message the bot sent to a chat that is still there, as it is now."""
        with self.lock:
            mine = [m for m in self._store.values() if m["chat"]["id"] == chat_id and self._is_own(m)]
            return copy.deepcopy(mine[-1]) if mine else None

    # ---- what tests do: people and chats

    def user(
        self,
        user_id: int,
        first_name: str,
        language_code: str = "zh-hans",
        username: str | None = None,
        *,
        started: bool = True,
    ) -> JSON:
        """A person; one who started the bot (or, not `started`, one who never did)."""
        person: JSON = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name,
            "language_code": language_code,
        }
        if username:
            person["username"] = username
        with self.lock:
            self.users[user_id] = person
            (self.chats if started else self.strangers).add(user_id)
            (self.strangers if started else self.chats).discard(user_id)
        return dict(person)

    def group(
        self,
        chat_id: int,
        members: Mapping[int, str] | None = None,
        bot_is_admin: bool = False,
        type: str = "group",
        title: str | None = None,
    ) -> JSON:
        """A group (id < 0; a supergroup's is -100…) with the bot in it, and these members."""
        if type not in ("group", "supergroup") or chat_id >= 0:
            raise ValueError(f"not a group: {type} {chat_id}")
        if any(status not in STATUSES for status in (members or {}).values()):
            raise ValueError(f"a member's status is one of {STATUSES}")
        group = Group(
            chat_id,
            type,
            title or f"群 {chat_id}",
            dict(members or {}),
            "administrator" if bot_is_admin else "member",
        )
        with self.lock:
            self.groups[chat_id] = group
        return group.chat()

    def block(self, user_id: int) -> None:
        """The user blocks the bot: Telegram tells it with a my_chat_member update."""
        with self.lock:
            self.blocked.add(user_id)
            chat = self._private_chat(user_id)
            self._enqueue({"my_chat_member": self._member_change(chat, user_id, "member", "kicked")})

    def remove_bot(self, chat_id: int, by: int) -> None:
        """A member removes the bot from a group: sends there are refused from now on."""
        with self.lock:
            group = self.groups[chat_id]
            was, group.bot_status = group.bot_status, "kicked"
            self._enqueue({"my_chat_member": self._member_change(group.chat(), by, was, "kicked")})

    def migrate(self, old_id: int, new_id: int) -> None:
        """A group upgraded to a supergroup: Telegram posts migrate_to_chat_id in the old chat and
        migrate_from_chat_id in the new; sends to the old id are refused with the new one."""
        if not new_id < -1_000_000_000_000:
            raise ValueError(f"a supergroup's id is -100…: {new_id}")
        with self.lock:
            old = self.groups[old_id]
            if old.type != "group":
                raise ValueError(f"only a group is upgraded: {old_id} is a {old.type}")
            new = Group(new_id, "supergroup", old.title, dict(old.members), old.bot_status)
            self.groups[new_id], old.migrated_to = new, new_id
            creator = next(
                (self.users[u] for u, s in old.members.items() if s == "creator" and u in self.users), None
            )
            sender = {"from": creator} if creator else {}
            self._enqueue({"message": self._message(old.chat(), **sender, migrate_to_chat_id=new_id)})
            self._enqueue({"message": self._message(new.chat(), **sender, migrate_from_chat_id=old_id)})

    # ---- what tests do: updates

    def incoming(self, user_id: int, chat_id: int | None = None, **content: Any) -> JSON:
        """A message from a user in their private chat (or a group), with this content, such as
        text=…, sticker={…}, location={…}: kept in the chat, not yet sent to the bot."""
        with self.lock:
            return copy.deepcopy(self._incoming(user_id, chat_id, content))

    def say(self, user_id: int, text: str, chat_id: int | None = None) -> JSON:
        """A text from a user, with a bot_command entity when it starts with "/". In a group with
        privacy mode on, the bot gets it only if it is a command to it or mentions it."""
        content: JSON = {"text": text}
        command = COMMAND.match(text)
        if command:
            content["entities"] = [{"offset": 0, "length": utf16_len(command.group()), "type": "bot_command"}]
        with self.lock:
            message = self._incoming(user_id, chat_id, content)
            if self._reaches_bot(message["chat"], text):
                self._enqueue({"message": message})
            return copy.deepcopy(message)

    def send_photo_from(
        self, user_id: int, image: bytes, caption: str | None = None, chat_id: int | None = None
    ) -> JSON:
        """A photo from a user: PhotoSizes of up to 90, 320 and 1280 px, each a file_id whose
        file is these bytes (the fake does not scale them)."""
        size = image_size(image)
        if size is None:
            raise ValueError("not a JPEG or PNG")
        with self.lock:
            content: JSON = {"photo": self._photo_sizes(image, *size)}
            if caption:
                content["caption"] = caption
            message = self._incoming(user_id, chat_id, content)
            if self._reaches_bot(message["chat"], caption or ""):
                self._enqueue({"message": message})
            return copy.deepcopy(message)

    def press(self, user_id: int, message: int | Mapping[str, Any], data: str) -> str:
        """A user presses a button of a message the bot sent: the callback query's id."""
        message_id = message if isinstance(message, int) else int(message["message_id"])
        with self.lock:
            shown = self._store.get(message_id)
            if shown is None or not self._is_own(shown):
                raise ValueError(f"no message {message_id} from the bot")
            rows = shown.get("reply_markup", {}).get("inline_keyboard", [])
            if data not in [button.get("callback_data") for row in rows for button in row]:
                raise ValueError(f"message {message_id} has no button with data {data!r}")
            chat = shown["chat"]
            if not self._sees(user_id, chat):
                raise ValueError(f"user {user_id} is not in chat {chat['id']}")
            query_id = str(self._next("query"))
            self._queries[query_id] = {"time": time.monotonic(), "answered": False}
            query = {
                "id": query_id,
                "from": self._user(user_id),
                "message": copy.deepcopy(shown),
                "chat_instance": str(abs(chat["id"]) * 1_000_003 % 2**63),
                "data": data,
            }
            self._enqueue({"callback_query": query})
            return query_id

    def inject(self, update: Mapping[str, Any]) -> JSON:
        """Any update (edited_message, channel_post, …): it gets the next update_id."""
        with self.lock:
            return self._enqueue(copy.deepcopy(dict(update)))

    def post_update(
        self, update: Mapping[str, Any], url: str | None = None, secret: str | None = None
    ) -> int:
        """POST one update to a webhook (the one set, by default) with a secret header (the one
        set, by default; "" for none): the HTTP status it answered."""
        with self.lock:
            hook = self.webhook or {}
            body = {"update_id": self._next("update")} | dict(update)
        target = url or hook.get("url")
        if not target:
            raise ValueError("no webhook is set")
        return post(target, body, hook.get("secret_token", "") if secret is None else secret)

    # ---- the API: `answer` calls a method of METHODS with the lock held

    def answer(self, path: str, params: Params) -> tuple[int, JSON]:
        prefix = f"/bot{self.token}/"
        if not path.startswith(prefix):
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        method = METHODS.get(path[len(prefix) :].lower())
        try:
            with self.lock:
                if self.unavailable > 0:
                    self.unavailable -= 1
                    return 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}
                if method is None:
                    return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
                before = self._accepted
                result = method(self, params)
                count = self._accepted
        except ApiError as refused:
            return refused.code, refused.payload()
        if count > before and self.on_message is not None:
            self.on_message(count)
        return 200, {"ok": True, "result": result}

    def download(self, path: str) -> bytes | None:
        prefix = f"/file/bot{self.token}/"
        with self.lock:
            return self._downloads.get(path[len(prefix) :]) if path.startswith(prefix) else None

    def _get_me(self, p: Params) -> JSON:
        return self.bot | {
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _get_updates(self, p: Params) -> list[JSON]:
        if self.webhook is not None:
            raise conflict(
                "can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
            )
        offset, limit = p.number("offset"), min(max(p.number("limit", 100), 1), 100)
        deadline = time.monotonic() + min(max(p.number("timeout"), 0), LONG_POLL_MAX)
        self._allow(p)
        if offset < 0:
            del self._updates[:offset]
        else:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        self._poll += 1
        mine = self._poll
        self.changed.notify_all()
        while not self._updates and not self._closing and (left := deadline - time.monotonic()) > 0:
            self.changed.wait(left)
            if self.webhook is not None:
                raise conflict("terminated by setWebhook request")
            if self._poll != mine:
                raise conflict(
                    "terminated by other getUpdates request; make sure that only one bot instance is running"
                )
        return copy.deepcopy(self._updates[:limit])

    def _set_webhook(self, p: Params) -> bool:
        url = p.text("url")
        if not url:
            return self._delete_webhook(p)
        check_webhook_url(url)
        secret = p.text("secret_token")
        if len(secret) > 256:
            raise bad("secret token is too long")
        if not SECRET.fullmatch(secret):
            raise bad("secret token contains unallowed characters")
        self._allow(p)
        if p.flag("drop_pending_updates"):
            self._updates.clear()
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "max_connections": min(max(p.number("max_connections", 40), 1), 100),
            "allowed_updates": list(self.allowed_updates),
            "drop_pending_updates": p.flag("drop_pending_updates"),
        }
        self._last_error = None
        self.changed.notify_all()
        return True

    def _delete_webhook(self, p: Params) -> bool:
        if p.flag("drop_pending_updates"):
            self._updates.clear()
        self.webhook, self._last_error = None, None
        return True

    def _get_webhook_info(self, p: Params) -> JSON:
        info: JSON = {"url": "", "has_custom_certificate": False, "pending_update_count": len(self._updates)}
        if self.webhook is not None:
            info |= {"url": self.webhook["url"], "max_connections": self.webhook["max_connections"]}
            info["ip_address"] = "127.0.0.1"
        if self._last_error is not None:
            info["last_error_date"], info["last_error_message"] = self._last_error
        if self.allowed_updates:
            info["allowed_updates"] = list(self.allowed_updates)
        return info

    def _set_my_commands(self, p: Params) -> bool:
        commands = bot_commands(p.json("commands", "commands") or [])
        key = self._commands_key(p)
        if commands:
            self.commands[key] = commands
        else:
            self.commands.pop(key, None)
        return True

    def _delete_my_commands(self, p: Params) -> bool:
        self.commands.pop(self._commands_key(p), None)
        return True

    def _get_my_commands(self, p: Params) -> list[JSON]:
        return copy.deepcopy(self.commands.get(self._commands_key(p), []))

    def _send_message(self, p: Params) -> JSON:
        text, markup = self._text(p, "text"), self._markup(p)
        chat = self._chat(p, WRITE)
        if utf16_len(text) > MAX_TEXT:
            raise bad("message is too long")
        self._admit(chat)
        message = self._sent(chat, markup, text=text)
        self.sent.append((chat["id"], text))
        self._record(message, "text", markup)
        return copy.deepcopy(message)

    def _send_photo(self, p: Params) -> JSON:
        caption, markup = p.text("caption"), self._markup(p)
        self._parse_mode(p)
        chat = self._chat(p, WRITE)
        photo = self._photo(p)
        if utf16_len(caption) > MAX_CAPTION:
            raise bad("message caption is too long")
        self._admit(chat)
        message = self._sent(chat, markup, photo=photo, **({"caption": caption} if caption else {}))
        self._record(message, "photo", markup)
        return copy.deepcopy(message)

    def _edit_message_text(self, p: Params) -> JSON:
        text, markup = self._text(p, "text"), self._markup(p)
        message = self._own(self._chat(p, EDIT), p)
        if "text" not in message:
            raise bad("there is no text in the message to edit")
        if utf16_len(text) > MAX_TEXT:
            raise bad("message is too long")
        if message["text"] == text and message.get("reply_markup") == inline_keyboard(markup):
            raise bad(NOT_MODIFIED)
        self._admit(message["chat"])
        message["text"] = text
        return self._edited(message, markup, "edit")

    def _edit_message_reply_markup(self, p: Params) -> JSON:
        markup = self._markup(p)
        message = self._own(self._chat(p, EDIT), p)
        if message.get("reply_markup") == inline_keyboard(markup):
            raise bad(NOT_MODIFIED)
        return self._edited(message, markup, "markup")

    def _delete_message(self, p: Params) -> bool:
        if not p.text("chat_id"):
            raise bad("chat identifier is not specified")
        if not p.number("message_id"):
            raise bad("message identifier is not specified")
        chat = self._chat(p, WRITE)
        message = self._find(chat, p, "message to delete")
        group = self.groups.get(chat["id"])
        if not (self._is_own(message) or group is None or group.bot_status in ("creator", "administrator")):
            raise bad("message can't be deleted")
        del self._store[message["message_id"]]
        self._record(message, "delete", None)
        return True

    def _answer_callback_query(self, p: Params) -> bool:
        query_id = p.text("callback_query_id")
        query = self._queries.get(query_id)
        if query is None or query["answered"] or time.monotonic() - query["time"] > self.callback_timeout:
            raise bad(QUERY_TOO_OLD)
        query["answered"] = True
        self.answers.append(
            {
                "callback_query_id": query_id,
                "text": p.text("text") or None,
                "show_alert": p.flag("show_alert"),
                "url": p.text("url") or None,
                "cache_time": p.number("cache_time"),
                "time": time.monotonic(),
            }
        )
        return True

    def _get_file(self, p: Params) -> JSON:
        file_id = p.text("file_id")
        if not file_id:
            raise bad("file_id not specified")
        if file_id not in self._files:
            raise bad("invalid file_id")
        self.fetched.append(file_id)
        return dict(self._files[file_id])

    def _get_chat(self, p: Params) -> JSON:
        return self._chat(p, READ) | {
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": dict.fromkeys(
                (
                    "unlimited_gifts",
                    "limited_gifts",
                    "unique_gifts",
                    "premium_subscription",
                    "gifts_from_channels",
                ),
                False,
            ),
        }

    def _get_chat_member(self, p: Params) -> JSON:
        chat = self._chat(p, MEMBERS)
        user_id = p.number("user_id")
        bot = self.bot
        if user_id != bot["id"] and user_id not in self.users:
            raise bad("user not found")
        group = self.groups.get(chat["id"])
        if group is None:
            status = "member" if user_id in (chat["id"], bot["id"]) else "left"
        else:
            status = group.bot_status if user_id == bot["id"] else group.members.get(user_id, "left")
        return member(bot if user_id == bot["id"] else self.users[user_id], status, chat["type"])

    # ---- the API's checks

    def _chat(self, p: Params, access: str) -> JSON:
        """The chat a method is for, if the bot may do there what it needs (READ … WRITE)."""
        raw = p.text("chat_id")
        if not raw:
            raise bad("chat_id is empty")
        try:
            chat_id = int(raw)
        except ValueError:
            raise bad("chat not found") from None
        group = self.groups.get(chat_id)
        if group is not None:
            self._check_group(group, access)
            return group.chat()
        if chat_id in self.strangers and access == WRITE:
            raise forbidden("bot can't initiate conversation with a user")
        if chat_id not in self.chats | self.strangers:
            raise bad("chat not found")
        if chat_id in self.blocked and access in (EDIT, WRITE):
            raise forbidden("bot was blocked by the user")
        return self._private_chat(chat_id)

    def _check_group(self, group: Group, access: str) -> None:
        needs = (WRITE if group.type == "group" else READ) if access == MEMBERS else access
        if group.migrated_to is not None and needs == WRITE:
            raise bad(
                "group chat was upgraded to a supergroup chat", {"migrate_to_chat_id": group.migrated_to}
            )
        if group.bot_status in ("kicked", "left") and (needs != READ or group.type == "supergroup"):
            verb = "was kicked from" if group.bot_status == "kicked" else "is not a member of"
            raise forbidden(f"bot {verb} the {group.type} chat")

    def _text(self, p: Params, name: str) -> str:
        text = p.text(name)
        if not text.strip():
            raise bad("message text is empty")
        self._parse_mode(p)
        return text

    def _parse_mode(self, p: Params) -> None:
        mode = p.text("parse_mode")
        if mode and mode.lower() not in ("html", "markdown", "markdownv2"):
            raise bad(f"unsupported parse_mode: {mode}")

    def _markup(self, p: Params) -> JSON | None:
        markup = p.json("reply_markup", "reply keyboard markup")
        if markup is not None:
            check_markup(markup)
        return markup

    def _admit(self, chat: Mapping[str, Any]) -> None:
        """Flood control, then the overall rate and a group's 20 a minute, over sliding windows."""
        if self.flood > 0:
            self.flood -= 1
            raise too_many(1)
        now = time.monotonic()
        windows: list[tuple[deque[float], float, float]] = []
        if self.overall_per_second:
            window = max(1.0, 1 / self.overall_per_second)
            windows.append((self._recent, window, self.overall_per_second * window))
        if chat["type"] in ("group", "supergroup"):
            windows.append((self._to_group.setdefault(chat["id"], deque()), 60.0, GROUP_PER_MINUTE))
        for times, window, limit in windows:
            while times and times[0] <= now - window:
                times.popleft()
            if len(times) >= limit:
                raise too_many(max(1, math.ceil(times[0] + window - now)))
        for times, _, _ in windows:
            times.append(now)

    def _find(self, chat: Mapping[str, Any], p: Params, what: str) -> JSON:
        message = self._store.get(p.number("message_id"))
        if message is None or message["chat"]["id"] != chat["id"]:
            raise bad(f"{what} not found")
        return message

    def _own(self, chat: Mapping[str, Any], p: Params) -> JSON:
        message = self._find(chat, p, "message to edit")
        group = self.groups.get(chat["id"])
        if not self._is_own(message) or (group is not None and group.migrated_to is not None):
            raise bad("message can't be edited")
        return message

    def _photo(self, p: Params) -> list[JSON]:
        upload = p.file("photo")
        if upload is None:
            file_id = p.text("photo")
            if not file_id:
                raise bad("there is no photo in the request")
            if file_id not in self._photos:
                raise bad("wrong file identifier/HTTP URL specified")
            return copy.deepcopy(self._photos[file_id])
        if not upload:
            raise bad("file must be non-empty")
        size = image_size(upload)
        if size is None:
            raise bad("IMAGE_PROCESS_FAILED")
        width, height = size
        if width + height > 10_000 or max(width, height) > 20 * max(1, min(width, height)):
            raise bad("PHOTO_INVALID_DIMENSIONS")
        return self._photo_sizes(upload, width, height)

    def _commands_key(self, p: Params) -> tuple[str, str]:
        key = scope_key(p.json("scope", "BotCommandScope"))
        if ":" in key:
            self._chat(Params({"chat_id": key.split(":")[1]}, {}), READ)
        language = p.text("language_code")
        check_language(language)
        return key, language

    def _allow(self, p: Params) -> None:
        with contextlib.suppress(ApiError):
            allowed = p.json("allowed_updates", "allowed_updates")
            if isinstance(allowed, list):
                self.allowed_updates = [str(kind) for kind in allowed]

    # ---- the fake's state (the lock held)

    def _next(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    def _is_own(self, message: Mapping[str, Any]) -> bool:
        return message.get("from", {}).get("id") == self.bot["id"]

    def _user(self, user_id: int) -> JSON:
        if user_id not in self.users:
            raise ValueError(f"no user {user_id}: make one with fake.user()")
        return dict(self.users[user_id])

    def _private_chat(self, user_id: int) -> JSON:
        person = self.users.get(user_id, {})
        chat = {"id": user_id, "type": "private", "first_name": person.get("first_name", RESIDENT)}
        return chat | ({"username": person["username"]} if "username" in person else {})

    def _sees(self, user_id: int, chat: Mapping[str, Any]) -> bool:
        group = self.groups.get(chat["id"])
        if group is None:
            return chat["id"] == user_id
        return group.members.get(user_id) in ("creator", "administrator", "member")

    def _reaches_bot(self, chat: Mapping[str, Any], text: str) -> bool:
        """Whether Telegram gives the bot a message in this chat (privacy mode, membership)."""
        group = self.groups.get(chat["id"])
        if group is None:
            return True
        if group.bot_status in ("kicked", "left") or group.migrated_to is not None:
            return False
        if not self.privacy_mode or group.bot_status == "administrator":
            return True
        username = self.bot["username"]
        command = COMMAND.match(text)
        addressed = command is not None and command.group(1) in (None, f"@{username}")
        return addressed or f"@{username}" in text

    def _incoming(self, user_id: int, chat_id: int | None, content: JSON) -> JSON:
        sender = self._user(user_id)
        if chat_id is None or chat_id == user_id:
            if user_id in self.blocked:  # writing to the bot again unblocks it
                self.blocked.discard(user_id)
                change = self._member_change(self._private_chat(user_id), user_id, "kicked", "member")
                self._enqueue({"my_chat_member": change})
            self.strangers.discard(user_id)
            self.chats.add(user_id)
            chat = self._private_chat(user_id)
        else:
            chat = self.groups[chat_id].chat()
            if not self._sees(user_id, chat):
                raise ValueError(f"user {user_id} is not in chat {chat_id}")
        return self._message(chat, **{"from": sender}, **content)

    def _message(self, chat: JSON, **content: Any) -> JSON:
        message = {"message_id": self._next("message"), "date": int(time.time()), "chat": chat, **content}
        self._store[message["message_id"]] = message
        return message

    def _sent(self, chat: JSON, markup: JSON | None, **content: Any) -> JSON:
        self._accepted += 1
        keyboard = inline_keyboard(markup)
        return self._message(
            chat, **{"from": self.bot}, **content, **({"reply_markup": keyboard} if keyboard else {})
        )

    def _edited(self, message: JSON, markup: JSON | None, kind: str) -> JSON:
        keyboard = inline_keyboard(markup)
        if keyboard:
            message["reply_markup"] = keyboard
        else:
            message.pop("reply_markup", None)
        message["edit_date"] = int(time.time())
        self._record(message, kind, markup)
        return copy.deepcopy(message)

    def _record(self, message: Mapping[str, Any], kind: str, markup: JSON | None) -> None:
        """What the bot did, for `messages`: the text (or caption) as it now is; none once deleted."""
        self.messages.append(
            {
                "chat_id": message["chat"]["id"],
                "message_id": message["message_id"],
                "text": None if kind == "delete" else message.get("text", message.get("caption")),
                "reply_markup": copy.deepcopy(markup),
                "kind": kind,
                "time": time.monotonic(),
            }
        )

    def _photo_sizes(self, data: bytes, width: int, height: int) -> list[JSON]:
        longest = max(width, height)
        limits = sorted(
            {limit for limit in PHOTO_LIMITS if limit < longest} | {min(longest, PHOTO_LIMITS[-1])}
        )
        sizes = []
        for limit in limits:
            n = self._next("file")
            file = {
                "file_id": f"AgACAgUAAxkBAAIB{n:08d}",
                "file_unique_id": f"AQAD{n:08d}",
                "file_size": len(data),
            }
            self._files[file["file_id"]] = file | {"file_path": f"photos/file_{n}.jpg"}
            self._downloads[f"photos/file_{n}.jpg"] = data
            scale = limit / longest
            sizes.append(
                file | {"width": max(1, round(width * scale)), "height": max(1, round(height * scale))}
            )
        for size in sizes:
            self._photos[size["file_id"]] = sizes
        return copy.deepcopy(sizes)

    def _member_change(self, chat: JSON, by: int, old: str, new: str) -> JSON:
        bot = self.bot
        return {
            "chat": chat,
            "from": self.users.get(by, {"id": by, "is_bot": False, "first_name": RESIDENT}),
            "date": int(time.time()),
            "old_chat_member": member(bot, old, chat["type"]),
            "new_chat_member": member(bot, new, chat["type"]),
        }

    def _enqueue(self, update: JSON) -> JSON:
        """An update for the bot: kept for getUpdates or the webhook, if of a type it asked for."""
        update = {"update_id": self._next("update")} | {k: v for k, v in update.items() if k != "update_id"}
        kind = next(k for k in update if k != "update_id")
        if (kind in self.allowed_updates) if self.allowed_updates else (kind not in DEFAULT_EXCLUDED):
            self._updates.append(update)
            self.enqueued += 1
            self.changed.notify_all()
        return copy.deepcopy(update)

    # ---- webhooks

    def _deliver(self) -> None:
        """The webhook sender: the queued updates in turn, while a webhook is set and deliveries on."""
        while True:
            with self.lock:
                while not self._closing and not (self.webhook and self.deliver_webhooks and self._updates):
                    self.changed.wait(0.05)  # `deliver_webhooks` may be set without a notice
                if self._closing:
                    return
                update, hook = self._updates[0], dict(self.webhook)
            self._deliver_one(update, hook)

    def _deliver_one(self, update: JSON, hook: JSON) -> None:
        """POST an update, again after a refusal: it leaves the queue once taken or given up on."""
        for attempt in range(self.webhook_retries + 1):
            try:
                status: int | None = post(hook["url"], update, hook["secret_token"])
            except OSError:
                status = None
            error = webhook_error(status)
            with self.lock:
                self.deliveries.append((update["update_id"], status))
                if error is not None:
                    self._last_error = (int(time.time()), error)
                if self._closing or self.webhook is None or self.webhook["url"] != hook["url"]:
                    return  # the update stays, for the next webhook or getUpdates
                if error is None or attempt == self.webhook_retries:
                    with contextlib.suppress(ValueError):  # unless dropped meanwhile
                        self._updates.remove(update)
                    return
            time.sleep(self.webhook_retry_delay * 2**attempt)


def webhook_error(status: int | None) -> str | None:
    """What getWebhookInfo says of a delivery that failed: none for a 2xx answer."""
    if status is None:
        return "Connection refused"
    if 200 <= status < 300:
        return None
    try:
        return f"Wrong response from the webhook: {status} {http.HTTPStatus(status).phrase}"
    except ValueError:  # a status with no name
        return f"Wrong response from the webhook: {status}"


def member(user: JSON, status: str, chat_type: str) -> JSON:
    """A ChatMember as the API shows one, with the fields its status has."""
    answer: JSON = {"status": status, "user": dict(user)}
    if status == "creator":
        answer["is_anonymous"] = False
    elif status == "administrator":
        rights = ("manage_chat", "delete_messages", "manage_video_chats", "restrict_members", "change_info")
        answer |= {"can_be_edited": False, "is_anonymous": False, "can_promote_members": False}
        answer |= {f"can_{right}": True for right in (*rights, "invite_users", "pin_messages")}
        answer |= {f"can_{right}_stories": False for right in ("post", "edit", "delete")}
        if chat_type == "supergroup":
            answer["can_manage_topics"] = False
    elif status == "kicked":
        answer["until_date"] = 0
    return answer


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # to this machine, never a proxy


def post(url: str, update: Mapping[str, Any], secret: str) -> int:
    """POST an update as Telegram does: JSON, with the secret header when there is a secret."""
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    request = urllib.request.Request(
        url, json.dumps(update, ensure_ascii=False).encode(), headers, method="POST"
    )
    try:
        with _OPENER.open(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as answered:
        answered.close()
        return answered.code


def parse(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A request body's parameters and uploaded files: JSON, a form, or multipart/form-data."""
    if content_type.startswith("application/json"):
        with contextlib.suppress(ValueError):
            values = json.loads(body or b"{}")
            return (values if isinstance(values, dict) else {}), {}
        return {}, {}
    if not content_type.startswith("multipart/form-data"):
        return dict(parse_qsl(body.decode())), {}
    values: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    form = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    for part in form.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        if part.get_filename() is None:
            values[name] = data.decode()
        else:
            files[name] = data
    return values, files


METHODS: dict[str, Callable[[FakeTelegram, Params], Any]] = {
    "getme": FakeTelegram._get_me,
    "getupdates": FakeTelegram._get_updates,
    "setwebhook": FakeTelegram._set_webhook,
    "deletewebhook": FakeTelegram._delete_webhook,
    "getwebhookinfo": FakeTelegram._get_webhook_info,
    "setmycommands": FakeTelegram._set_my_commands,
    "deletemycommands": FakeTelegram._delete_my_commands,
    "getmycommands": FakeTelegram._get_my_commands,
    "sendmessage": FakeTelegram._send_message,
    "sendphoto": FakeTelegram._send_photo,
    "editmessagetext": FakeTelegram._edit_message_text,
    "editmessagereplymarkup": FakeTelegram._edit_message_reply_markup,
    "deletemessage": FakeTelegram._delete_message,
    "answercallbackquery": FakeTelegram._answer_callback_query,
    "getfile": FakeTelegram._get_file,
    "getchat": FakeTelegram._get_chat,
    "getchatmember": FakeTelegram._get_chat_member,
}


def _handler(fake: FakeTelegram) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            url = urlsplit(self.path)
            path = unquote(url.path)  # PTB quotes the token in download URLs
            if path.startswith("/file/"):
                self.reply(*self.download(path))
                return
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            values, files = parse(self.headers.get("Content-Type", ""), body)
            params = Params(dict(parse_qsl(url.query)) | values, files)  # the query string counts too
            status, payload = fake.answer(path, params)
            self.reply(status, json.dumps(payload, ensure_ascii=False).encode(), "application/json")

        do_GET = do_POST

        def download(self, path: str) -> tuple[int, bytes, str]:
            data = fake.download(path)
            if data is None:
                missing = {"ok": False, "error_code": 404, "description": "Not Found"}
                return 404, json.dumps(missing).encode(), "application/json"
            return 200, data, "application/octet-stream"

        def reply(self, status: int, data: bytes, kind: str) -> None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a sender killed mid-request
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:  # quiet: the test reads `sent`
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    """With Telegram's patience for connections: a listen backlog of 5 (socketserver's) drops some
    when a bot opens dozens at once (the benchmarks' crowds)."""

    request_queue_size = 1024
    daemon_threads = True


@contextmanager
def running(fake: FakeTelegram) -> Iterator[FakeTelegram]:
    server = _Server(("127.0.0.1", 0), _handler(fake))
    fake.port = server.server_address[1]
    fake._closing = False
    threads = [
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True),
        threading.Thread(target=fake._deliver, daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        yield fake
    finally:
        with fake.lock:
            fake._closing = True  # long polls answer at once; the webhook sender stops
            fake.changed.notify_all()
        server.shutdown()
        server.server_close()
        for thread in threads:
            thread.join()
