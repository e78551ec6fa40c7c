"""`yishi serve`: the web process of a webhook deployment (Starlette on uvicorn).

- `GET /healthz`: 200 when the database answers and its schema is this version's; else 503.
- `GET /`, `/c/<slug>/…`: the public board (`bot.board.site`), read-only.
- `GET|POST /wechat`: the Official Account's callback (`bot.channels.wechat.callback`).
- `POST /telegram`: Telegram's webhook. The secret header is checked before anything is read
  (missing or wrong: 403); the update is handled before the answer, so that Telegram sends it
  again if this process dies meanwhile, and a repeat (a retry, or the same update at another
  worker) is answered 200 and ignored: its id was recorded with the transaction that handled it.

Every worker keeps its state in the database: run as many as needed, and one `yishi clock`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.app import App
from bot.board import site
from bot.config import Config, ConfigError
from storage.migrate import current_revision, head_revision

if TYPE_CHECKING:
    from bot.channels.telegram.webhook import Webhook
    from bot.channels.wechat.callback import Callback

log = logging.getLogger("yishi.web")

MAX_BODY = 1_000_000  # bytes of one update: far beyond any Telegram sends
MAX_WECHAT_BODY = 64 * 1024  # bytes of one WeChat callback: far beyond any it sends
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def create(config: Config, app: App | None = None) -> Starlette:
    if config.telegram_token and not config.telegram_webhook_secret:
        raise ConfigError(
            "TELEGRAM_WEBHOOK_SECRET is required with TELEGRAM_TOKEN: the webhook accepts only requests that carry it"
        )
    if config.wechat_token and not (config.wechat_app_id and config.wechat_app_secret):
        raise ConfigError(
            "WECHAT_APP_ID and WECHAT_APP_SECRET are required with WECHAT_TOKEN: replies that take longer than WeChat waits, and pictures, go through its API"
        )
    core = app or App(config)
    channels: dict[str, Webhook] = {}
    wechat: dict[str, Callback] = {}

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if config.telegram_token:
            from bot.channels.telegram.webhook import Webhook

            channels["telegram"] = await Webhook.start(core, config)
        if config.wechat_token:
            from bot.channels.wechat.callback import Callback

            wechat["callback"] = Callback(core, config)
        try:
            yield
        finally:
            for channel in channels.values():
                await channel.stop()
            for callback in wechat.values():
                await asyncio.to_thread(callback.close)

    async def healthz(request: Request) -> Response:
        try:
            schema = await asyncio.to_thread(_schema, core)
        except Exception as exc:  # the database is down, or refuses: what the check is for
            log.warning("healthz: the database cannot be read: %s", exc)
            return JSONResponse({"ok": False, "database": "unreachable"}, status_code=503)
        head = head_revision()
        if schema != head:
            return JSONResponse({"ok": False, "schema": schema, "needs": head}, status_code=503)
        return JSONResponse({"ok": True, "schema": schema})

    async def telegram(request: Request) -> Response:
        channel = channels.get("telegram")
        if channel is None:
            return PlainTextResponse("Telegram is not configured here", status_code=404)
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, config.telegram_webhook_secret.encode()):
            return PlainTextResponse("Forbidden", status_code=403)
        body = await _body(request)
        if body is None:
            return PlainTextResponse("Too large", status_code=413)
        try:
            data = json.loads(body)
        except ValueError:
            return PlainTextResponse("Not JSON", status_code=400)
        status = await channel.handle(data)
        return Response(status_code=status)

    async def wechat_callback(request: Request) -> Response:
        callback = wechat.get("callback")
        if callback is None:
            return PlainTextResponse("WeChat is not configured here", status_code=404)
        query = dict(request.query_params)
        if request.method == "GET":
            answer = callback.verify(query)
        else:
            answer = await callback.receive(query, await _body(request, MAX_WECHAT_BODY))
        return Response(answer.body, status_code=answer.status, media_type=answer.media_type)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/telegram", telegram, methods=["POST"]),
            Route("/wechat", wechat_callback, methods=["GET", "POST"]),
            *site.routes(core),
        ],
        exception_handlers={404: site.not_found(core)},
        lifespan=lifespan,
    )


def in_background(config: Config, port: int) -> str:
    """The site on 127.0.0.1 in a thread of this process (`yishi demo` serves its board beside its
    console); its address. Where `port` is taken, another one."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    site = create(replace(config, telegram_token="", wechat_token="", wechat_app_id=""))  # the board alone
    server = uvicorn.Server(
        uvicorn.Config(site, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, name="yishi-board", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        raise RuntimeError(f"the board could not be served on 127.0.0.1:{port}")
    return f"http://127.0.0.1:{port}"


def _schema(app: App) -> str | None:
    with app.db.transaction() as session:
        session.execute(text("SELECT 1"))
    return current_revision(app.db.engine)


async def _body(request: Request, most: int = MAX_BODY) -> bytes | None:
    """The request's body, or None once it grows beyond `most` bytes (read no further)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > most:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
