"""A fake WeChat API (the Official Account's): a real HTTP server on 127.0.0.1 that the real wechatpy
talks to, checking what it receives as WeChat does, and a maker of the callbacks WeChat sends,
signed (and in safe mode encrypted) with wechatpy's own crypto.

- `GET /cgi-bin/token`: the app id and secret checked; a new token each time (the old one stays
  valid until `revoke`), the fetches counted.
- `POST /cgi-bin/message/custom/send`: the token checked (40001), the JSON's shape, the text's
  2,048 bytes (45002), and each follower's window: 5 messages within 48 hours of their message,
  3 within a minute of a menu click or a follow (45047 beyond its count, 45015 after its time),
  as the test says they interacted (`interacted`, which `Resident.send` calls).
- `GET /cgi-bin/media/get`: a picture the test put (`media`), else 40007.
- `POST /cgi-bin/menu/create`: the menu's shape checked, and kept.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

from wechatpy.crypto import WeChatCrypto

from tests.harness import http_fake

APP_ID, APP_SECRET = "wx0123456789abcdef", "fake-app-secret-0123456789"
TOKEN = "callback-token-0123"  # the callback's token, set in WeChat's console
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters
ACCOUNT = "gh_0123456789ab"  # the Official Account's own id (ToUserName)
TEXT_MAX = 2048
WINDOWS = {"message": (5, 48 * 3600.0), "event": (3, 60.0)}


class Sent(NamedTuple):
    openid: str
    text: str
    at: float


@dataclass
class Window:
    left: int
    until: float


@dataclass
class FakeWeChat:
    base: str = ""
    tokens: set[str] = field(default_factory=set)
    fetches: int = 0
    windows: dict[str, Window] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    refused: list[tuple[str, int]] = field(default_factory=list)  # (openid, errcode)
    media: dict[str, bytes] = field(default_factory=dict)
    menus: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def api_url(self) -> str:
        return self.base

    def texts_to(self, openid: str) -> list[str]:
        return [s.text for s in self.sent if s.openid == openid]

    def revoke(self) -> None:
        """Every token given so far stops working (WeChat answers 40001)."""
        with self.lock:
            self.tokens.clear()

    def interacted(self, openid: str, kind: str) -> None:
        """The follower wrote ("message") or clicked the menu, followed, scanned ("event")."""
        count, lasts = WINDOWS[kind]
        with self.lock:
            current = self.windows.get(openid)
            if kind == "message" or current is None or current.left <= 0 or current.until < time.time():
                self.windows[openid] = Window(count, time.time() + lasts)

    # --- the API -------------------------------------------------------------------------------

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, bytes, str]:
        parts = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        with self.lock:
            if parts.path == "/cgi-bin/token" and method == "GET":
                return self._json(self._token(query))
            if query.get("access_token") not in self.tokens:
                return self._json({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"})
            if parts.path == "/cgi-bin/message/custom/send" and method == "POST":
                return self._json(self._custom(body))
            if parts.path == "/cgi-bin/media/get" and method == "GET":
                data = self.media.get(query.get("media_id", ""))
                if data is None:
                    return self._json({"errcode": 40007, "errmsg": "invalid media_id"})
                return 200, data, "image/jpeg"
            if parts.path == "/cgi-bin/menu/create" and method == "POST":
                return self._json(self._menu(body))
        return 404, b"not found", "text/plain"

    @staticmethod
    def _json(data: dict) -> tuple[int, bytes, str]:
        return 200, json.dumps(data, ensure_ascii=False).encode(), "application/json"

    def _token(self, query: dict[str, str]) -> dict:
        if query.get("grant_type") != "client_credential" or query.get("appid") != APP_ID:
            return {"errcode": 40013, "errmsg": "invalid appid"}
        if query.get("secret") != APP_SECRET:
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        token = secrets.token_hex(16)
        self.tokens.add(token)
        self.fetches += 1
        return {"access_token": token, "expires_in": 7200}

    def _custom(self, body: bytes) -> dict:
        try:
            message = json.loads(body)
            openid, text = message["touser"], message["text"]["content"]
            assert message["msgtype"] == "text" and isinstance(text, str) and isinstance(openid, str)
        except (ValueError, KeyError, TypeError, AssertionError):
            return {"errcode": 40008, "errmsg": "invalid message type"}
        if not text.strip():
            return {"errcode": 44002, "errmsg": "empty post data"}
        if len(text.encode()) > TEXT_MAX:
            return {"errcode": 45002, "errmsg": "content size out of limit"}
        window = self.windows.get(openid)
        if window is None or window.until < time.time():
            self.refused.append((openid, 45015))
            return {"errcode": 45015, "errmsg": "response out of time limit or subscription is canceled"}
        if window.left <= 0:
            self.refused.append((openid, 45047))
            return {"errcode": 45047, "errmsg": "out of response count limit"}
        window.left -= 1
        self.sent.append(Sent(openid, text, time.monotonic()))
        return {"errcode": 0, "errmsg": "ok"}

    def _menu(self, body: bytes) -> dict:
        try:
            menu = json.loads(body)
            buttons = menu["button"]
            assert 1 <= len(buttons) <= 3
            for b in buttons:
                assert b["type"] == "click" and b["name"] and b["key"] and len(b["name"].encode()) <= 16
        except (ValueError, KeyError, TypeError, AssertionError):
            return {"errcode": 40016, "errmsg": "invalid button size"}
        self.menus.append(menu)
        return {"errcode": 0, "errmsg": "ok"}


def _handler(fake: FakeWeChat) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, data, kind = fake.answer(method, self.path, body)
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def running(fake: FakeWeChat) -> Iterator[FakeWeChat]:
    with http_fake(_handler(fake)) as base:
        fake.base = base
        yield fake


# --- callbacks, as WeChat sends them -----------------------------------------------------------


def signature(timestamp: str, nonce: str, token: str = TOKEN) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()


def xml(openid: str, kind: str, created: int, msg_id: int | None = None, **fields: str) -> str:
    """A message or event as WeChat's XML (`kind`: text, image, voice, event …)."""
    inner = "".join(f"<{k}><![CDATA[{v}]]></{k}>" for k, v in fields.items())
    ident = f"<MsgId>{msg_id}</MsgId>" if msg_id is not None else ""
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[{kind}]]></MsgType>{inner}{ident}</xml>"
    )


def signed(body: str, safe: bool = False, at: float | None = None) -> tuple[dict[str, str], bytes]:
    """The query and body of a callback: signed, and in safe mode encrypted."""
    timestamp, nonce = str(int(at if at is not None else time.time())), secrets.token_hex(5)
    query = {"signature": signature(timestamp, nonce), "timestamp": timestamp, "nonce": nonce, "openid": "x"}
    if not safe:
        return query, body.encode()
    encrypted = WeChatCrypto(TOKEN, AES_KEY, APP_ID).encrypt_message(body, nonce, timestamp)
    msg_signature = encrypted.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
    return query | {"encrypt_type": "aes", "msg_signature": msg_signature}, encrypted.encode()


def read_reply(data: bytes, safe: bool = False) -> str:
    """The text of a passive answer ("" for `success`)."""
    text = data.decode()
    if text == "success" or not text:
        return ""
    if safe:
        found = text.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
        stamp = text.split("<TimeStamp>")[1].split("</TimeStamp>")[0]
        nonce = text.split("<Nonce><![CDATA[")[1].split("]]>")[0]
        text = WeChatCrypto(TOKEN, AES_KEY, APP_ID).decrypt_message(text, found, stamp, nonce)
    return text.split("<Content><![CDATA[")[1].split("]]></Content>")[0]
