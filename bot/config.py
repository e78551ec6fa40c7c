"""Settings from the environment (and a `.env` file), with casts and an injectable environ.

Modelled on starlette's `Config`: each setting is read once, cast, and a bad value is an
error that names the variable, not a crash somewhere later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

DEFAULT_DATABASE_URL = "sqlite:///yishi.db"


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
    wecom_robot_urls: tuple[str, ...] = ()

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
            telegram_webhook_secret=get("TELEGRAM_WEBHOOK_SECRET"),
            wechat_app_id=get("WECHAT_APP_ID"),
            wechat_app_secret=get("WECHAT_APP_SECRET"),
            wechat_token=get("WECHAT_TOKEN"),
            wechat_aes_key=get("WECHAT_AES_KEY"),
            wechat_api_url=get("WECHAT_API_URL"),
            wechat_subscribe_template_id=get("WECHAT_SUBSCRIBE_TEMPLATE_ID"),
            wecom_robot_urls=tuple(u.strip() for u in get("WECOM_ROBOT_URLS").split(",") if u.strip()),
        )
