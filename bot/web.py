"""`yishi serve`: the web process of a webhook deployment (Starlette on uvicorn).

- `GET /healthz`: 200 when the database answers and its schema is this version's; else 503.
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
from typing import TYPE_CHECKING

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.app import App
from bot.config import Config, ConfigError
from storage.migrate import current_revision, head_revision

if TYPE_CHECKING:
    from bot.channels.telegram.webhook import Webhook

log = logging.getLogger("yishi.web")

MAX_BODY = 1_000_000  # bytes of one update: far beyond any Telegram sends
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def create(config: Config, app: App | None = None) -> Starlette:
    if config.telegram_token and not config.telegram_webhook_secret:
        raise ConfigError(
            "TELEGRAM_WEBHOOK_SECRET is required with TELEGRAM_TOKEN: the webhook accepts only requests that carry it"
        )
    core = app or App(config)
    channels: dict[str, Webhook] = {}

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if config.telegram_token:
            from bot.channels.telegram.webhook import Webhook

            channels["telegram"] = await Webhook.start(core, config)
        try:
            yield
        finally:
            for channel in channels.values():
                await channel.stop()

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

    return Starlette(
        routes=[Route("/healthz", healthz), Route("/telegram", telegram, methods=["POST"])],
        lifespan=lifespan,
    )


def _schema(app: App) -> str | None:
    with app.db.transaction() as session:
        session.execute(text("SELECT 1"))
    return current_revision(app.db.engine)


async def _body(request: Request) -> bytes | None:
    """The request's body, or None once it grows beyond MAX_BODY (read no further)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
