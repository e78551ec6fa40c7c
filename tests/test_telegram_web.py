"""`yishi serve` (webhooks, health) and the Telegram command line: `yishi telegram
[--set-webhook|--delete-webhook]`, `yishi invites --format links`."""

from __future__ import annotations

import concurrent.futures
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from sqlalchemy import text

from bot import web
from bot.config import ConfigError
from storage.db import Database
from storage.migrate import head_revision
from tests.fake_telegram import FakeTelegram, post, running
from tests.harness import BALLOT_KEY, YISHI, TestBot, free_port, serving
from tests.test_races import bot as pg_bot  # noqa: F401  (the PostgreSQL-only TestBot)

SECRET = "s3cret-of-the-hook"
USER = 6001


def start_update(fake: FakeTelegram, text: str = "/start") -> dict:
    """An update as Telegram would POST it: a message from USER in their private chat."""
    fake.user(USER, "小明")
    with fake.lock:
        update_id = fake._next("update")
    return {"update_id": update_id, "message": fake.incoming(USER, text=text)}


@contextmanager
def served(bot: TestBot, fake: FakeTelegram) -> Iterator[str]:
    config = replace(
        bot.app.config,
        telegram_token=fake.token,
        telegram_api_url=fake.api_url,
        telegram_webhook_secret=SECRET,
    )
    with serving(bot.app, config) as url:
        yield url


def request(url: str, body: bytes | None = None, secret: str | None = None) -> tuple[int, bytes]:
    """GET (no body) or POST a body; the status and what came back."""
    headers = {"Content-Type": "application/json"} | (
        {web.SECRET_HEADER: secret} if secret is not None else {}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, body, headers), timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as refused:
        with refused:
            return refused.code, refused.read()


def test_a_webhook_without_the_right_secret_is_refused_before_it_is_read(bot: TestBot) -> None:
    with running(FakeTelegram()) as fake, served(bot, fake) as url:
        hook = f"{url}/telegram"
        update = json.dumps(start_update(fake)).encode()
        for secret in (None, "wrong", SECRET + "x"):
            assert request(hook, update, secret)[0] == 403
        assert request(hook, b"{not json", "wrong")[0] == 403
        assert fake.sent == []
        assert request(hook, b"{not json", SECRET)[0] == 400
        assert request(hook, b"[1, 2]", SECRET)[0] == 400
        assert request(hook, b'{"update_id": 1}', SECRET)[0] == 200  # of a kind not read: taken, ignored
        assert request(hook, b"x" * (web.MAX_BODY + 1), SECRET)[0] == 413
        assert request(hook, update, SECRET)[0] == 200
        assert request(hook, update, SECRET)[0] == 200  # Telegram's retry of the same update
        assert len(fake.texts_to(USER)) == 2  # the welcome and the privacy notice, once


def test_health_says_whether_the_database_answers_with_this_versions_schema(bot: TestBot) -> None:
    with serving(bot.app, bot.app.config) as url:
        status, body = request(f"{url}/healthz")
        assert status == 200 and json.loads(body)["ok"] is True
        assert request(f"{url}/telegram", b"{}")[0] == 404  # no Telegram configured here
        with bot.db.transaction() as session:
            session.execute(text("UPDATE alembic_version SET version_num = '0001'"))
        try:
            status, body = request(f"{url}/healthz")
            assert status == 503 and json.loads(body)["schema"] == "0001"
        finally:  # the database is shared with the tests that follow
            with bot.db.transaction() as session:
                session.execute(
                    text("UPDATE alembic_version SET version_num = :head"), {"head": head_revision()}
                )


def test_a_token_without_a_webhook_secret_is_refused_at_start(bot: TestBot) -> None:
    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET"):
        web.create(replace(bot.app.config, telegram_token="1:x"), bot.app)


def env_for(db: Database, fake: FakeTelegram, **more: str) -> dict[str, str]:
    return dict(
        os.environ,
        DATABASE_URL=db.url,
        YISHI_BALLOT_KEY=BALLOT_KEY,
        TELEGRAM_TOKEN=fake.token,
        TELEGRAM_API_URL=fake.api_url,
        TELEGRAM_WEBHOOK_SECRET=SECRET,
        **more,
    )


@contextmanager
def worker(db: Database, fake: FakeTelegram) -> Iterator[str]:
    """A `yishi serve` process; its URL once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [YISHI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env_for(db, fake),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()[1]
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "yishi serve did not start"
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_the_same_update_at_two_workers_at_once_is_handled_once(pg_bot: TestBot) -> None:  # noqa: F811
    db = pg_bot.db
    with running(FakeTelegram()) as fake, worker(db, fake) as one, worker(db, fake) as two:
        for round_ in range(5):
            update = start_update(fake)
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                posts = [pool.submit(post, f"{url}/telegram", update, SECRET) for url in (one, two)]
                statuses = [p.result() for p in posts]
            assert statuses == [200, 200]
            assert len(fake.texts_to(USER)) == 2 * (round_ + 1)  # one welcome and notice for each update


def yishi(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([YISHI, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_polling_is_refused_while_a_webhook_is_set_and_the_webhook_is_set_and_removed(
    community: Database,
) -> None:
    with running(FakeTelegram()) as fake:
        env = env_for(
            community, fake, YISHI_LOCALE="en", TELEGRAM_WEBHOOK_URL="https://yishi.example.org/telegram"
        )
        done = yishi("telegram", "--set-webhook", env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "Telegram now sends updates to https://yishi.example.org/telegram."
        assert fake.webhook is not None and fake.webhook["secret_token"] == SECRET
        assert set(fake.webhook["allowed_updates"]) == {
            "message",
            "edited_message",
            "callback_query",
            "my_chat_member",
        }
        assert [c["command"] for c in fake.commands[("all_group_chats", "")]][:2] == ["start", "help"]

        refused = yishi("telegram", env=env)
        assert refused.returncode == 1
        assert "A webhook is set (https://yishi.example.org/telegram)" in refused.stderr
        assert "yishi telegram --delete-webhook" in refused.stderr
        assert fake.webhook is not None  # not silently removed

        removed = yishi("telegram", "--delete-webhook", env=env)
        assert removed.returncode == 0 and fake.webhook is None


def test_invite_links_name_the_bot_from_getme(community: Database) -> None:
    with running(FakeTelegram()) as fake:
        done = yishi("invites", "--format", "links", env=env_for(community, fake))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    codes = yishi("invites", env=env_for(community, fake)).stdout.splitlines()
    assert lines[0] == "name,building,room,link" and len(lines) == len(codes) > 10
    ouyang = next(line for line in codes if line.startswith("欧阳明,1栋,101,"))
    assert ouyang.replace(",101,", ",101,https://t.me/yishi_test_bot?start=join_") in lines


def test_without_a_token_the_telegram_commands_say_where_one_comes_from(community: Database) -> None:
    env = dict(os.environ, DATABASE_URL=community.url, YISHI_LOCALE="en", TELEGRAM_TOKEN="")
    done = yishi("telegram", env=env)
    assert done.returncode == 2 and "@BotFather" in done.stderr
