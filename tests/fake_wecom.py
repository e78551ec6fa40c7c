"""A fake WeCom group-robot endpoint: a real HTTP server on 127.0.0.1 that checks what it is sent
as WeCom does (the key, the JSON shape, the byte limits, 20 messages a minute per robot) and
records what each robot's group would read.

WeCom's answers: `{"errcode": 0, "errmsg": "ok"}`; 93000 for a key it does not know; 45009
beyond 20 messages in a minute; 40058 for a content over its limit (text 2,048 bytes, Markdown
4,096) or empty; 40008 for another message type.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

from tests.harness import http_fake

PATH = "/cgi-bin/webhook/send"
LIMITS = {"text": 2048, "markdown": 4096}
PER_MINUTE = 20


class Received(NamedTuple):
    key: str
    msgtype: str
    content: str
    at: datetime  # on the fake's clock
    wall: float  # time.monotonic(), for who waited on whom


@dataclass
class FakeWeCom:
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    keys: set[str] = field(default_factory=set)  # the robots WeCom knows
    delay: dict[str, float] = field(default_factory=dict)  # a slow robot: seconds before it answers
    received: list[Received] = field(default_factory=list)  # what each group read
    refused: list[tuple[str, int]] = field(default_factory=list)  # (key, errcode)
    base: str = ""
    _times: dict[str, deque[datetime]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, key: str) -> str:
        return f"{self.base}{PATH}?key={key}"

    def robot(self, key: str) -> str:
        """A robot WeCom knows; its webhook URL."""
        self.keys.add(key)
        return self.url(key)

    def read(self, key: str) -> list[str]:
        return [r.content for r in self.received if r.key == key]

    def answer(self, path: str, body: bytes, content_type: str) -> tuple[int, dict]:
        parts = urlsplit(path)
        if parts.path != PATH:
            return 404, {"errcode": 404, "errmsg": "not found"}
        key = (parse_qs(parts.query).get("key") or [""])[0]
        if key in self.delay:
            time.sleep(self.delay[key])
        with self._lock:
            code = self._check(key, body, content_type)
            if code:
                self.refused.append((key, code))
        return 200, {"errcode": code, "errmsg": "ok" if code == 0 else f"refused ({code})"}

    def _check(self, key: str, body: bytes, content_type: str) -> int:
        if key not in self.keys:
            return 93000
        if not content_type.startswith("application/json"):
            return 40008
        try:
            message = json.loads(body)
            kind = message["msgtype"]
            content = message[kind]["content"]
        except (ValueError, KeyError, TypeError):
            return 40008
        if kind not in LIMITS or not isinstance(content, str):
            return 40008
        if not content.strip() or len(content.encode()) > LIMITS[kind]:
            return 40058
        now = self.clock()
        times = self._times.setdefault(key, deque())
        while times and now - times[0] >= timedelta(minutes=1):
            times.popleft()
        if len(times) >= PER_MINUTE:
            return 45009
        times.append(now)
        self.received.append(Received(key, kind, content, now, time.monotonic()))
        return 0


def _handler(fake: FakeWeCom) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, answer = fake.answer(self.path, body, self.headers.get("Content-Type", ""))
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def running(fake: FakeWeCom) -> Iterator[FakeWeCom]:
    with http_fake(_handler(fake)) as base:
        fake.base = base
        yield fake
