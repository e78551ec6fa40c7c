"""Settings from the environment (and a `.env` file), with casts and an injectable environ.

Modelled on starlette's `Config`: each setting is read once, cast, and a bad value is an
error that names the variable, not a crash somewhere later.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from storage.seal import BadKey, decode_key

DEFAULT_DATABASE_URL = "sqlite:///yishi.db"
# shown as MASK wherever settings are shown or logged (the database URL: its password)
SECRETS = (
    "telegram_token",
    "telegram_webhook_secret",
    "wechat_app_secret",
    "wechat_token",
    "wechat_aes_key",
    "ballot_key",
)
MASK = "********"


class ConfigError(ValueError):
    """A setting that is missing or malformed; the message names it."""


def _timezone(name: str, value: str) -> str:
    try:
        ZoneInfo(value)
    # a region such as "Asia" is a directory of tzdata: IsADirectoryError, an OSError
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ConfigError(f"{name}={value!r} is not a known time zone (e.g. Asia/Shanghai)") from exc
    return value


def _locale(name: str, value: str) -> str:
    if value not in ("zh_CN", "en"):
        raise ConfigError(f"{name}={value!r}: use zh_CN or en")
    return value


def _ballot_key(name: str, value: str) -> str:
    if value:
        try:
            decode_key(value, name)
        except BadKey as exc:
            raise ConfigError(str(exc)) from None
    return value


def _port(name: str, value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ConfigError(f"{name}={value!r} is not a port number (1-65535)")
    return int(value)


def _webhook_secret(name: str, value: str) -> str:
    """What Telegram accepts as a secret_token: 1-256 of A-Z, a-z, 0-9, _ and -."""
    if value and (len(value) > 256 or not re.fullmatch(r"[A-Za-z0-9_-]+", value)):
        raise ConfigError(f"{name} must be 1-256 letters, digits, _ or - (Telegram's rule)")
    return value


def _aes_key(name: str, value: str) -> str:
    """WeChat's EncodingAESKey: 43 letters and digits, as its console makes it."""
    if value and not re.fullmatch(r"[A-Za-z0-9]{43}", value):
        raise ConfigError(
            f"{name} must be the 43 letters and digits of the EncodingAESKey in WeChat's console"
        )
    return value


def _public_url(name: str, value: str) -> str:
    if value and not value.startswith(("https://", "http://")):
        raise ConfigError(f"{name}={value!r} is not a web address (https://…)")
    return value.rstrip("/")


def masked_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return MASK


@dataclass(frozen=True)
class Config:
    database_url: str = DEFAULT_DATABASE_URL
    timezone: str = "Asia/Shanghai"
    locale: str = "zh_CN"
    telegram_token: str = ""
    telegram_api_url: str = ""
    telegram_webhook_url: str = ""
    telegram_webhook_secret: str = ""
    wechat_app_id: str = ""
    wechat_app_secret: str = ""
    wechat_token: str = ""
    wechat_aes_key: str = ""
    wechat_api_url: str = ""
    wechat_subscribe_template_id: str = ""
    wechat_account_name: str = ""  # the Official Account's name, as residents search for it
    ballot_key: str = ""
    ballot_key_file: str = "yishi-ballot.key"
    port: int = 8000  # of `yishi serve`
    public_url: str = ""  # where the public board is served: group messages link to it

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRETS and value:
                value = MASK
            elif f.name == "database_url":
                value = masked_url(value)
            shown.append(f"{f.name}={value!r}")
        return f"Config({', '.join(shown)})"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, env_file: str | Path = ".env") -> Config:
        """Read the settings; the process environment wins over the `.env` file."""
        values: dict[str, str] = {}
        if env_file and Path(env_file).is_file():
            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)

        def get(name: str, default: str = "") -> str:
            return values.get(name, default).strip()

        return cls(
            database_url=get("DATABASE_URL", DEFAULT_DATABASE_URL) or DEFAULT_DATABASE_URL,
            timezone=_timezone("YISHI_TIMEZONE", get("YISHI_TIMEZONE", "Asia/Shanghai")),
            locale=_locale("YISHI_LOCALE", get("YISHI_LOCALE", "zh_CN")),
            telegram_token=get("TELEGRAM_TOKEN"),
            telegram_api_url=get("TELEGRAM_API_URL"),
            telegram_webhook_url=get("TELEGRAM_WEBHOOK_URL"),
            telegram_webhook_secret=_webhook_secret(
                "TELEGRAM_WEBHOOK_SECRET", get("TELEGRAM_WEBHOOK_SECRET")
            ),
            wechat_app_id=get("WECHAT_APP_ID"),
            wechat_app_secret=get("WECHAT_APP_SECRET"),
            wechat_token=get("WECHAT_TOKEN"),
            wechat_aes_key=_aes_key("WECHAT_AES_KEY", get("WECHAT_AES_KEY")),
            wechat_api_url=get("WECHAT_API_URL"),
            wechat_subscribe_template_id=get("WECHAT_SUBSCRIBE_TEMPLATE_ID"),
            wechat_account_name=get("WECHAT_ACCOUNT_NAME"),
            ballot_key=_ballot_key("YISHI_BALLOT_KEY", get("YISHI_BALLOT_KEY")),
            ballot_key_file=get("YISHI_BALLOT_KEY_FILE", "yishi-ballot.key") or "yishi-ballot.key",
            port=_port("PORT", get("PORT", "8000") or "8000"),
            public_url=_public_url("YISHI_PUBLIC_URL", get("YISHI_PUBLIC_URL")),
        )
