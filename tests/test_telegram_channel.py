"""The Telegram channel's sending half, against a fake Bot API on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from bot.channels.telegram import TelegramChannel, split
from bot.config import Config
from bot.scheduler import run_once
from flows.outbox import backoff
from storage.db import Database
from storage.models import Account, Outbox
from tests.fake_telegram import FakeTelegram, running
from tests.harness import TestBot

CHAT = 777001
COMMENTS = [f"您的议题 #1 有新评论 C{c}：{t}" for c, t in ((1, "一"), (2, "二"), (3, "三"))]


def comments_for_a_telegram_user(bot: TestBot) -> None:
    """Three comments by others on 欧阳明's issue, while his account is a Telegram one."""
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运", "停了三次。")
    with bot.db.transaction() as session:
        session.execute(Outbox.__table__.delete())
        account = session.scalars(select(Account).where(Account.external_id == "person:1")).one()
        account.channel, account.external_id = "telegram", str(CHAT)
    for who, text in (("李伟@1栋-102", "一"), ("王芳", "二"), ("张强", "三")):
        bot.say(f"/comment 1 {text}", as_=who)


def send_due(bot: TestBot, fake: FakeTelegram) -> int:
    """One run of the sender through the Telegram channel: the number of messages sent."""
    channel = TelegramChannel(Config(telegram_token=fake.token, telegram_api_url=fake.api_url))
    return asyncio.run(run_once(bot.app, [channel]))[1]


def outbox_rows(bot: TestBot) -> list[Outbox]:
    with bot.db.transaction() as session:
        return list(session.scalars(select(Outbox).order_by(Outbox.id)))


def test_messages_reach_the_residents_private_chat_in_their_language(bot: TestBot) -> None:
    comments_for_a_telegram_user(bot)
    with running(FakeTelegram(chats={CHAT})) as fake:
        assert send_due(bot, fake) == 3
        assert send_due(bot, fake) == 0  # nothing twice
    assert fake.texts_to(CHAT) == COMMENTS
    assert all(row.sent_at == bot.clock.now() for row in outbox_rows(bot))


def test_a_blocked_bot_fails_for_good_and_is_not_tried_again(bot: TestBot) -> None:
    comments_for_a_telegram_user(bot)
    with running(FakeTelegram(chats={CHAT}, blocked={CHAT})) as fake:
        assert send_due(bot, fake) == 0
        bot.advance(timedelta(days=1))
        assert send_due(bot, fake) == 0
    rows = outbox_rows(bot)
    assert all(r.failed_at is not None and r.attempts == 1 for r in rows)
    assert rows[0].error == "Forbidden: bot was blocked by the user"


def test_a_chat_that_does_not_exist_fails_for_good(bot: TestBot) -> None:
    comments_for_a_telegram_user(bot)
    with running(FakeTelegram(chats=set())) as fake:
        assert send_due(bot, fake) == 0
    assert {r.error for r in outbox_rows(bot)} == {"Chat not found"}
    assert all(r.failed_at is not None for r in outbox_rows(bot))


def test_an_outage_is_tried_again_after_the_backoff_and_each_message_arrives_once(bot: TestBot) -> None:
    comments_for_a_telegram_user(bot)
    with running(FakeTelegram(chats={CHAT}, unavailable=1)) as fake:
        assert send_due(bot, fake) == 2
        waiting = [r for r in outbox_rows(bot) if r.sent_at is None]
        assert len(waiting) == 1 and waiting[0].next_attempt_at == bot.clock.now() + backoff(1)
        assert send_due(bot, fake) == 0  # not due again yet
        bot.advance(backoff(1))
        assert send_due(bot, fake) == 1
    assert sorted(fake.texts_to(CHAT)) == sorted(COMMENTS)


def test_a_long_message_goes_as_several_cut_at_line_ends() -> None:
    lines = ["甲" * 3000, "乙" * 3000, "丙" * 10]
    assert split("\n".join(lines)) == [lines[0], lines[1] + "\n" + lines[2]]
    assert split("短") == ["短"]
    assert split("x" * 5000) == ["x" * 4096, "x" * 904]  # no line end to cut at


@given(st.text(alphabet=st.sampled_from("ab \n议"), max_size=12_000))
def test_split_parts_fit_and_keep_every_character_but_the_cut_line_ends(text: str) -> None:
    parts = split(text)
    assert all(0 < len(part) <= 4096 for part in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")


def test_a_refused_token_stops_the_clock_with_a_message_that_does_not_repeat_it(
    community: Database,
) -> None:
    yishi = str(Path(sys.executable).with_name("yishi"))
    with running(FakeTelegram(token="999:the-right-one")) as fake:
        env = dict(
            os.environ,
            DATABASE_URL=community.url,
            YISHI_LOCALE="en",
            TELEGRAM_TOKEN="111:a-wrong-one",
            TELEGRAM_API_URL=fake.api_url,
        )
        done = subprocess.run(
            [yishi, "clock", "--once"], env=env, capture_output=True, text=True, timeout=60, check=False
        )
    assert done.returncode == 1
    assert "The chat channel cannot be used: TELEGRAM_TOKEN was refused by the service." in done.stderr
    assert "a-wrong-one" not in done.stdout + done.stderr
