"""A fake Telegram Bot API: a real HTTP server on 127.0.0.1 that python-telegram-bot talks to.

It checks what it receives as the Bot API does (the token in the path, the method, a known
chat, a text of 1 to 4,096 characters, a user who started the bot and has not blocked it)
and can play an outage (502) or flood control (429, retry after 1 s). It answers in the
API's own shape, `{"ok": true, "result": …}` or `{"ok": false, "error_code": …,
"description": …}`. It records each message it accepts. `on_message` is a hook called with
the count of messages accepted so far, before the answer goes back: a test can kill the
sender there, with the message received but its answer still in flight.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

TOKEN = "123456:TEST-token-for-the-fake"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "议事", "username": "yishi_test_bot"}
MAX_TEXT = 4096


@dataclass
class FakeTelegram:
    token: str = TOKEN
    chats: set[int] = field(default_factory=set)  # users who have started the bot
    blocked: set[int] = field(default_factory=set)  # users who have blocked it since
    sent: list[tuple[int, str]] = field(default_factory=list)
    unavailable: int = 0  # the next this many requests are answered 502 Bad Gateway, as in an outage
    flood: int = 0  # the next this many messages are refused by flood control: retry after 1 s
    strangers: set[int] = field(default_factory=set)  # users who never started the bot
    on_message: Callable[[int], None] | None = None
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def texts_to(self, chat_id: int) -> list[str]:
        with self.lock:
            return [text for chat, text in self.sent if chat == chat_id]

    def answer(self, path: str, params: dict[str, str]) -> tuple[int, dict]:
        prefix = f"/bot{self.token}/"
        if not path.startswith(prefix):
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        method = path[len(prefix) :].lower()
        if self.unavailable > 0:
            self.unavailable -= 1
            return 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}
        if method == "getme":
            return 200, {"ok": True, "result": BOT_USER}
        if method != "sendmessage":
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        return self.send_message(params)

    def send_message(self, params: dict[str, str]) -> tuple[int, dict]:
        def bad(description: str, code: int = 400) -> tuple[int, dict]:
            return code, {"ok": False, "error_code": code, "description": description}

        raw_chat, text = params.get("chat_id", ""), params.get("text", "")
        if not raw_chat:
            return bad("Bad Request: chat_id is empty")
        try:
            chat_id = int(raw_chat)
        except ValueError:
            return bad("Bad Request: chat not found")
        if chat_id in self.strangers:
            return bad("Forbidden: bot can't initiate conversation with a user", 403)
        if chat_id not in self.chats:
            return bad("Bad Request: chat not found")
        if chat_id in self.blocked:
            return bad("Forbidden: bot was blocked by the user", 403)
        if not text.strip():
            return bad("Bad Request: message text is empty")
        if len(text.encode("utf-16-le")) // 2 > MAX_TEXT:  # counted in UTF-16 units
            return bad("Bad Request: message is too long")
        if self.flood > 0:
            self.flood -= 1
            return 429, {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 1",
                "parameters": {"retry_after": 1},
            }
        with self.lock:
            self.sent.append((chat_id, text))
            count = len(self.sent)
        if self.on_message is not None:
            self.on_message(count)
        message = {
            "message_id": count,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "resident"},
            "from": BOT_USER,
            "text": text,
        }
        return 200, {"ok": True, "result": message}


def _handler(fake: FakeTelegram) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            kind = self.headers.get("Content-Type", "")
            params = dict(parse_qsl(url.query))  # the API takes parameters in the query string too
            params |= (
                json.loads(body or "{}") if kind.startswith("application/json") else dict(parse_qsl(body))
            )
            status, payload = fake.answer(url.path, {k: str(v) for k, v in params.items()})
            data = json.dumps(payload, ensure_ascii=False).encode()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a sender killed mid-request
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        do_GET = do_POST

        def log_message(self, format: str, *args: object) -> None:  # quiet: the test reads `sent`
            pass

    return Handler


@contextmanager
def running(fake: FakeTelegram) -> Iterator[FakeTelegram]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
