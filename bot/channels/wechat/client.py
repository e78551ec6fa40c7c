"""wechatpy's client, pointed at `WECHAT_API_URL` and sharing one access token between processes.

wechatpy 1.8 hard-codes the token's URL; this subclass fetches it from the configured API, and
keeps it in the database (`platform_tokens`), so that every web worker and the clock use the same
token: WeChat's allowance of token fetches is small, and each fetch invalidates the one before
after a few minutes. One process fetches at a time, under the token row's lock; one that finds a
token fetched meanwhile by another uses it. A token is refreshed five minutes before it expires,
and at once when WeChat answers 40001 or 42001 (wechatpy then asks for a new one and retries).
The client's calls block (requests): they run in threads, never on an event loop.
"""

from __future__ import annotations

from datetime import timedelta

import requests
from sqlalchemy import select
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage

from bot.config import Config
from flows.clock import Clock
from storage.db import Database
from storage.models import PlatformToken
from storage.rows import insert_new, locked

DEFAULT_API_URL = "https://api.weixin.qq.com"
REFRESH_BEFORE = timedelta(minutes=5)  # a token this close to its end is fetched anew
TIMEOUT = 10  # seconds of one call


class TokenStore(SessionStorage):
    """wechatpy's session storage for the access token, in the database: a token due to be
    refreshed reads as absent."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock

    def get(self, key: str, default: object = None) -> object:
        with self.db.transaction() as session:
            row = session.execute(
                select(PlatformToken.value, PlatformToken.expires_at).where(PlatformToken.name == key)
            ).first()
        if row is None or not row.value or row.expires_at - REFRESH_BEFORE <= self.clock.now():
            return default
        return row.value

    def set(self, key: str, value: str, ttl: int | None = None) -> None:
        raise NotImplementedError("the token is stored by Client.fetch_access_token, under its lock")

    def delete(self, key: str) -> None:
        with self.db.transaction() as session:
            session.execute(PlatformToken.__table__.delete().where(PlatformToken.name == key))


class Client(WeChatClient):
    def __init__(self, config: Config, db: Database, clock: Clock | None = None) -> None:
        self.api_url = (config.wechat_api_url or DEFAULT_API_URL).rstrip("/")
        self.API_BASE_URL = f"{self.api_url}/cgi-bin/"
        self.db, self.clock = db, clock or Clock()
        super().__init__(
            config.wechat_app_id,
            config.wechat_app_secret,
            session=TokenStore(db, self.clock),
            timeout=TIMEOUT,
        )
        self._used: str | None = None  # the token the last call carried (WeChat may refuse it)

    @property
    def access_token(self) -> str:
        token = self.session.get(self.access_token_key)
        if token is None:
            self.fetch_access_token()
            token = self.session.get(self.access_token_key)
        self._used = token
        return token

    def fetch_access_token(self) -> dict:
        """A token for every process: the one another process fetched meanwhile (not the one just
        refused), or a new one from WeChat, stored before the row's lock is let go."""
        key, now = self.access_token_key, self.clock.now()
        with self.db.transaction() as session:
            insert_new(
                session, PlatformToken.__table__, {"name": key, "value": "", "expires_at": now}, ("name",)
            )
            row = session.scalar(locked(select(PlatformToken).where(PlatformToken.name == key)))
            assert row is not None
            fresh = row.value and row.value != self._used and row.expires_at - REFRESH_BEFORE > now
            if fresh:
                return {"access_token": row.value}
            result = self._token_from_wechat()
            row.value = result["access_token"]
            row.expires_at = now + timedelta(seconds=int(result.get("expires_in", 7200)))
        return result

    def _token_from_wechat(self) -> dict:
        params = {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret}
        try:
            res = self._http.get(f"{self.api_url}/cgi-bin/token", params=params, timeout=TIMEOUT)
            res.raise_for_status()
            result = res.json()
        except (requests.RequestException, ValueError) as exc:
            raise WeChatClientException(
                None, f"the access token could not be fetched ({type(exc).__name__})"
            ) from None
        if result.get("errcode") or "access_token" not in result:
            raise WeChatClientException(result.get("errcode"), str(result.get("errmsg", "no token")))
        return result
