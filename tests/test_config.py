"""Settings from the environment and a `.env` file; database URLs normalised for psycopg 3."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Config, ConfigError
from storage.db import Database, normalise_url


def write_env(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".env"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults(tmp_path: Path) -> None:
    config = Config.from_environ(environ={}, env_file=tmp_path / "absent.env")
    assert config == Config()
    assert (config.database_url, config.timezone, config.locale) == (
        "sqlite:///yishi.db",
        "Asia/Shanghai",
        "zh_CN",
    )
    assert (config.telegram_token, config.telegram_api_url, config.wechat_account_name) == ("", "", "")


def test_reads_a_dotenv_file(tmp_path: Path) -> None:
    env = write_env(
        tmp_path,
        "# deployment\n"
        "DATABASE_URL=postgresql://yishi@127.0.0.1/yishi\n"
        'YISHI_TIMEZONE="Asia/Urumqi"\n'
        "YISHI_LOCALE=en\n"
        "TELEGRAM_TOKEN=123:abc\n"
        "TELEGRAM_API_URL=http://127.0.0.1:8081/bot\n"
        "WECHAT_ACCOUNT_NAME= 梧桐社区服务号 \n"
        "EMPTY_WITHOUT_VALUE\n",
    )
    config = Config.from_environ(environ={}, env_file=env)
    assert config.database_url == "postgresql://yishi@127.0.0.1/yishi"
    assert (config.timezone, config.locale) == ("Asia/Urumqi", "en")
    assert (config.telegram_token, config.telegram_api_url) == ("123:abc", "http://127.0.0.1:8081/bot")
    assert config.wechat_account_name == "梧桐社区服务号"


def test_the_environment_wins_over_the_dotenv_file(tmp_path: Path) -> None:
    env = write_env(tmp_path, "YISHI_LOCALE=en\nTELEGRAM_TOKEN=from-file\nWECHAT_TOKEN=file-only\n")
    config = Config.from_environ(
        environ={"YISHI_LOCALE": "zh_CN", "TELEGRAM_TOKEN": "from-env"}, env_file=env
    )
    assert (config.locale, config.telegram_token, config.wechat_token) == ("zh_CN", "from-env", "file-only")


def test_the_process_environment_and_dotenv_of_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_env(tmp_path, "YISHI_TIMEZONE=Europe/Berlin\nWECHAT_APP_ID=wx-file\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WECHAT_APP_ID", "wx-env")
    monkeypatch.delenv("YISHI_TIMEZONE", raising=False)
    config = Config.from_environ()
    assert (config.timezone, config.wechat_app_id) == ("Europe/Berlin", "wx-env")


def test_no_dotenv_file_is_read_when_none_is_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_env(tmp_path, "YISHI_LOCALE=en\n")
    monkeypatch.chdir(tmp_path)
    assert Config.from_environ(environ={}, env_file="").locale == "zh_CN"


def test_an_empty_database_url_means_the_default(tmp_path: Path) -> None:
    config = Config.from_environ(environ={"DATABASE_URL": "  "}, env_file=tmp_path / "absent.env")
    assert config.database_url == "sqlite:///yishi.db"


def test_values_are_stripped(tmp_path: Path) -> None:
    config = Config.from_environ(
        environ={"YISHI_TIMEZONE": " UTC ", "YISHI_LOCALE": "en\n"}, env_file=tmp_path / "absent.env"
    )
    assert (config.timezone, config.locale) == ("UTC", "en")


@pytest.mark.parametrize(
    "zone", ["Mars/Base", "asia/shanghai", "Asia", "America", "/etc/localtime", "../x", ""]
)
def test_a_bad_timezone_names_the_variable(tmp_path: Path, zone: str) -> None:
    with pytest.raises(ConfigError, match="YISHI_TIMEZONE"):
        Config.from_environ(environ={"YISHI_TIMEZONE": zone}, env_file=tmp_path / "absent.env")


def test_a_bad_timezone_in_the_dotenv_file_names_the_variable(tmp_path: Path) -> None:
    env = write_env(tmp_path, "YISHI_TIMEZONE=Beijing\n")
    with pytest.raises(ConfigError, match="YISHI_TIMEZONE='Beijing'"):
        Config.from_environ(environ={}, env_file=env)


@pytest.mark.parametrize("locale", ["zh", "zh-CN", "fr", "EN"])
def test_a_bad_locale_names_the_variable(tmp_path: Path, locale: str) -> None:
    with pytest.raises(ConfigError, match="YISHI_LOCALE"):
        Config.from_environ(environ={"YISHI_LOCALE": locale}, env_file=tmp_path / "absent.env")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@db.example:5432/yishi", "postgresql+psycopg://u:p@db.example:5432/yishi"),
        (
            "postgresql://u@127.0.0.1/yishi?sslmode=disable",
            "postgresql+psycopg://u@127.0.0.1/yishi?sslmode=disable",
        ),
        ("postgresql+psycopg://u@127.0.0.1/yishi", "postgresql+psycopg://u@127.0.0.1/yishi"),
        ("sqlite:///yishi.db", "sqlite:///yishi.db"),
        ("sqlite:////tmp/postgres://x.db", "sqlite:////tmp/postgres://x.db"),
    ],
)
def test_normalise_url(url: str, expected: str) -> None:
    assert normalise_url(url) == expected


def test_a_database_keeps_the_normalised_url() -> None:
    database = Database("postgres://u:p@127.0.0.1:5432/yishi")
    try:
        assert database.url == "postgresql+psycopg://u:p@127.0.0.1:5432/yishi"
        assert database.engine.dialect.name == "postgresql" and database.engine.dialect.driver == "psycopg"
    finally:
        database.dispose()


def test_secrets_are_masked_wherever_the_settings_are_shown() -> None:
    secrets = {
        "TELEGRAM_TOKEN": "123456:telegram-token-value",
        "TELEGRAM_WEBHOOK_SECRET": "webhook-secret-value",
        "WECHAT_APP_SECRET": "wechat-app-secret-value",
        "WECHAT_TOKEN": "wechat-token-value",
        "WECHAT_AES_KEY": "WechatAesKey" + "0123456789" * 3 + "x",
        "YISHI_BALLOT_KEY": "A" * 43 + "=",
        "DATABASE_URL": "postgresql://yishi:database-password@127.0.0.1/yishi",
    }
    config = Config.from_environ(secrets, env_file="")
    shown = repr(config) + str(config) + f"{config}"
    for value in [*secrets.values(), "database-password"]:
        assert value not in shown
    assert "postgresql://yishi:***@127.0.0.1/yishi" in shown and "wechat_app_secret='********'" in shown
    assert "telegram_api_url=''" in shown  # what is not secret is shown as it is


def test_the_public_url_is_a_web_address_kept_without_its_trailing_slash(tmp_path: Path) -> None:
    assert Config.from_environ(
        {"YISHI_PUBLIC_URL": "https://yishi.example.org/"}, env_file=""
    ).public_url == ("https://yishi.example.org")
    with pytest.raises(ConfigError, match=r"YISHI_PUBLIC_URL=.yishi\.example\.org. is not a web address"):
        Config.from_environ({"YISHI_PUBLIC_URL": "yishi.example.org"}, env_file="")
    with pytest.raises(ConfigError, match="PORT='80a' is not a port number"):
        Config.from_environ({"PORT": "80a"}, env_file="")
