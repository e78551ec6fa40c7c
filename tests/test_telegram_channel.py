"""The Telegram channel's sending half, against a fake Bot API on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.channels.telegram import TelegramChannel
from bot.config import Config
from bot.scheduler import Wakeup, run_once
from flows.messages import Incoming
from flows.outbox import backoff
from storage.db import Database
from storage.models import Account, Outbox
from tests.fake_telegram import FakeTelegram, running
from tests.harness import YISHI, TestBot, comments_on_another_channel, raised_twenty_days_ago

CHAT = 777001
COMMENTS = [f"您的议题 #1 有新评论 C{c}：{t}" for c, t in ((1, "一"), (2, "二"), (3, "三"))]


def send_due(bot: TestBot, fake: FakeTelegram) -> int:
    """One run of the sender through the Telegram channel: the number of messages sent."""
    channel = TelegramChannel(Config(telegram_token=fake.token, telegram_api_url=fake.api_url))
    _, sent, failed = asyncio.run(run_once(bot.app, [channel]))
    assert not failed, failed
    return sent


def outbox_rows(bot: TestBot) -> list[Outbox]:
    with bot.db.transaction() as session:
        return list(session.scalars(select(Outbox).order_by(Outbox.id)))


def test_messages_reach_the_residents_private_chat_in_their_language(bot: TestBot) -> None:
    comments_on_another_channel(bot, "telegram", str(CHAT))
    with running(FakeTelegram(chats={CHAT})) as fake:
        assert send_due(bot, fake) == 3
        assert send_due(bot, fake) == 0  # nothing twice
    assert fake.texts_to(CHAT) == COMMENTS
    assert all(row.sent_at == bot.clock.now() for row in outbox_rows(bot))


def held(bot: TestBot) -> bool:
    """Every message is held for its reader, none failed, and their Telegram account is blocked."""
    rows = outbox_rows(bot)
    with bot.db.transaction() as session:
        blocked = session.scalar(select(Account.blocked_at).where(Account.external_id == str(CHAT)))
    return blocked is not None and all(r.held_at is not None and r.failed_at is None for r in rows)


def test_a_resident_who_blocked_the_bot_gets_the_messages_once_they_write_again(bot: TestBot) -> None:
    comments_on_another_channel(bot, "telegram", str(CHAT))
    with running(FakeTelegram(chats={CHAT}, blocked={CHAT})) as fake:
        assert send_due(bot, fake) == 0
        bot.advance(timedelta(days=1))
        assert send_due(bot, fake) == 0
        assert held(bot) and outbox_rows(bot)[0].error == "Forbidden: bot was blocked by the user"
        fake.blocked.clear()  # they unblock the bot and write to it
        bot.app.dispatcher.handle(Incoming("telegram", str(CHAT), str(CHAT), text="/help"))
        assert send_due(bot, fake) == 3
    assert fake.texts_to(CHAT) == COMMENTS


def test_a_chat_that_does_not_exist_holds_the_messages(bot: TestBot) -> None:
    comments_on_another_channel(bot, "telegram", str(CHAT))
    with running(FakeTelegram(chats=set())) as fake:
        assert send_due(bot, fake) == 0
        assert send_due(bot, fake) == 0
    assert held(bot) and outbox_rows(bot)[0].error == "Chat not found"


@pytest.mark.asyncio
async def test_an_outage_is_tried_again_after_the_backoff_and_each_message_arrives_once(bot: TestBot) -> None:
    comments_on_another_channel(bot, "telegram", str(CHAT))
    with running(FakeTelegram(chats={CHAT})) as fake:
        wakeup = Wakeup(
            bot.app, [TelegramChannel(Config(telegram_token=fake.token, telegram_api_url=fake.api_url))]
        )
        assert await wakeup.connect() == []
        fake.unavailable = 1  # the first message meets a 502: its chat's others wait with it
        assert await asyncio.to_thread(wakeup.step) == (0, 0)
        first = outbox_rows(bot)[0]
        assert first.next_attempt_at == bot.clock.now() + backoff(1) and first.error == "Bad Gateway"
        assert await asyncio.to_thread(wakeup.step) == (0, 0)  # not due again yet
        bot.advance(backoff(1))
        assert await asyncio.to_thread(wakeup.step) == (0, 3)
        await wakeup.disconnect()
    assert sorted(fake.texts_to(CHAT)) == sorted(COMMENTS)


def test_a_refused_token_stops_the_clock_with_a_message_that_does_not_repeat_it(
    community: Database,
) -> None:
    with running(FakeTelegram(token="999:the-right-one")) as fake:
        env = dict(
            os.environ,
            DATABASE_URL=community.url,
            YISHI_LOCALE="en",
            TELEGRAM_TOKEN="111:a-wrong-one",
            TELEGRAM_API_URL=fake.api_url,
        )
        done = subprocess.run(
            [YISHI, "clock", "--once"], env=env, capture_output=True, text=True, timeout=60, check=False
        )
    assert done.returncode == 1
    assert "The chat channel cannot be used: TELEGRAM_TOKEN was refused by the service." in done.stderr
    assert "a-wrong-one" not in done.stdout + done.stderr


def test_flood_control_is_waited_out_and_the_message_sent_once(bot: TestBot) -> None:
    comments_on_another_channel(bot, "telegram", str(CHAT))
    with running(FakeTelegram(chats={CHAT}, flood=1)) as fake:
        assert send_due(bot, fake) == 3  # the rate limiter waits `retry_after` and tries again
    assert sorted(fake.texts_to(CHAT)) == sorted(COMMENTS)
    assert all(r.attempts == 1 for r in outbox_rows(bot))


def test_a_user_who_never_started_the_bot_is_held_for(bot: TestBot) -> None:
    comments_on_another_channel(bot, "telegram", str(CHAT))
    with running(FakeTelegram(chats={CHAT}, strangers={CHAT})) as fake:
        assert send_due(bot, fake) == 0
        assert send_due(bot, fake) == 0  # its other messages: held, not tried
    assert held(bot) and outbox_rows(bot)[0].error == "Forbidden: bot can't initiate conversation with a user"


def test_a_long_digest_arrives_in_parts_each_within_telegrams_limit(bot: TestBot) -> None:
    comments_on_another_channel(bot, "telegram", str(CHAT))
    long = "\n".join(f"第{n}行：" + "议" * 90 for n in range(100))  # about 9,500 characters
    with bot.db.transaction() as session:
        session.execute(Outbox.__table__.delete().where(Outbox.id > min(r.id for r in outbox_rows(bot))))
        session.execute(Outbox.__table__.update().values(rendered=long))
    with running(FakeTelegram(chats={CHAT})) as fake:
        assert send_due(bot, fake) == 1
    parts = fake.texts_to(CHAT)
    assert len(parts) == 3 and all(len(p) <= 4096 for p in parts) and "\n".join(parts) == long


@pytest.mark.asyncio
async def test_a_clock_that_cannot_reach_telegram_keeps_time_and_sends_once_it_can(bot: TestBot) -> None:
    comments_on_another_channel(bot, "telegram", str(CHAT))
    with running(FakeTelegram(chats={CHAT}, unavailable=1)) as fake:
        wakeup = Wakeup(
            bot.app, [TelegramChannel(Config(telegram_token=fake.token, telegram_api_url=fake.api_url))]
        )
        failed = await wakeup.connect()
        assert [f.permanent for f in failed] == [False] and not wakeup.ready
        assert await asyncio.to_thread(wakeup.step) == (0, 0)  # due work goes on; messages wait
        await wakeup.tick()  # the next wake-up reaches it
        await wakeup.disconnect()
    assert sorted(fake.texts_to(CHAT)) == sorted(COMMENTS)


def test_clock_once_does_the_due_work_and_says_why_messages_wait(sqlite_db: Database) -> None:
    raised_twenty_days_ago(sqlite_db)  # an expire is due
    with running(FakeTelegram()) as fake:
        closed = fake.api_url  # nothing listens there once the fake has stopped
    env = dict(
        os.environ,
        DATABASE_URL=sqlite_db.url,
        YISHI_LOCALE="zh_CN",
        TELEGRAM_TOKEN=fake.token,
        TELEGRAM_API_URL=closed,
    )
    done = subprocess.run(
        [YISHI, "clock", "--once"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "已处理到期事项 1 项；已发送消息 0 条。" in done.stdout  # the issue expired all the same
    assert "聊天渠道无法使用：无法连接" in done.stderr and fake.token not in done.stderr
