"""What the outbox sends through Telegram to groups and many residents: merged within a group's
20 a minute, flood control waited out with nothing lost, a group that moved or lost the bot
followed — the real sender against the fake Bot API."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from bot.channels.telegram import TelegramChannel
from bot.config import Config
from bot.scheduler import run_once
from flows import outbox
from storage.models import Account, Group, Outbox, Person, Scope
from tests.fake_telegram import FakeTelegram, running
from tests.harness import TestBot
from tests.telegram_live import live

GROUP, SUPERGROUP = -4001, -1004001000001
DONE = "Action item #{item} of issue #{id} {title} is done."


def send_due(bot: TestBot, fake: FakeTelegram) -> int:
    channel = TelegramChannel(Config(telegram_token=fake.token, telegram_api_url=fake.api_url))
    _, sent, failed = asyncio.run(run_once(bot.app, [channel]))
    assert not failed, failed
    return sent


def bound_group(bot: TestBot, chat_id: int = GROUP) -> None:
    with bot.db.transaction() as session:
        session.add(
            Group(
                channel="telegram", chat_id=str(chat_id), community_id=1, scope_id=1, bound_by=1,
                bound_at=bot.clock.now(), title="梧桐社区群",
            )
        )  # fmt: skip


def announce(bot: TestBot, items: range) -> None:
    with bot.db.transaction() as session:
        community = session.get(Scope, 1)
        assert community is not None
        for n in items:
            outbox.announce(session, community, bot.clock.now(), DONE, item=n, id=1, title="加装电梯")


def unsent(bot: TestBot) -> int:
    with bot.db.transaction() as session:
        return session.scalar(select(func.count(Outbox.id)).where(Outbox.sent_at.is_(None))) or 0


def test_a_burst_of_a_hundred_group_notifications_goes_merged_within_the_groups_limit(
    bot_en: TestBot,
) -> None:
    bot = bot_en
    bound_group(bot)
    with running(FakeTelegram()) as fake:
        fake.group(GROUP)
        for burst in range(3):  # three bursts within a minute: Telegram's 20 a minute never refuses
            announce(bot, range(burst * 100, burst * 100 + 100))
            send_due(bot, fake)
            bot.advance(timedelta(seconds=15))
        texts = fake.texts_to(GROUP)
    assert 3 <= len(texts) <= 20
    merged = "\n".join(texts)
    assert all(merged.count(f"Action item #{n} of issue #1") == 1 for n in range(300))
    assert unsent(bot) == 0


def test_flood_control_on_a_broadcast_loses_nothing_and_sends_nothing_twice(bot_en: TestBot) -> None:
    bot = bot_en
    with bot.db.transaction() as session:
        people = session.scalars(select(Person.id).where(Person.household_id.is_not(None))).all()
        for n, who in enumerate(people):
            session.add(
                Account(channel="telegram", external_id=str(7000 + n), person_id=who,
                        created_at=bot.clock.now(), last_seen_at=bot.clock.now())
            )  # fmt: skip
        session.flush()
        for n, who in enumerate(people):
            assert outbox.notify(session, who, bot.clock.now(), DONE, item=n, id=1, title="加装电梯")
    with running(FakeTelegram(chats={7000 + n for n in range(len(people))}, overall_per_second=5)) as fake:
        fake.flood = 6  # refused beyond the rate limiter's three retries: the outbox keeps that chat back
        for _ in range(20):
            if unsent(bot) == 0:
                break
            send_due(bot, fake)
            bot.advance(timedelta(seconds=2))
        assert unsent(bot) == 0
        with bot.db.transaction() as session:  # one chat was kept back by the outbox, then sent
            assert (
                session.scalar(select(func.count(Outbox.id)).where(Outbox.error.like("Flood control%"))) == 1
            )
        for n in range(len(people)):
            assert fake.texts_to(7000 + n) == [f"Action item #{n} of issue #1 加装电梯 is done."]


def test_a_group_upgraded_to_a_supergroup_gets_what_was_queued_at_its_new_id(bot_en: TestBot) -> None:
    bot = bot_en
    bound_group(bot)
    announce(bot, range(2))
    with running(FakeTelegram()) as fake:
        fake.group(GROUP)
        fake.migrate(GROUP, SUPERGROUP)  # Telegram refuses the old id, naming the new one
        assert send_due(bot, fake) + send_due(bot, fake) == 1  # the next run sends to the new id
        assert "Action item #1 of issue #1" in fake.texts_to(SUPERGROUP)[0] and fake.texts_to(GROUP) == []
    with bot.db.transaction() as session:
        assert session.scalar(select(Group.chat_id)) == str(SUPERGROUP)


def test_a_group_that_removed_the_bot_holds_its_messages_until_it_is_added_back(bot_en: TestBot) -> None:
    bot = bot_en
    bound_group(bot)
    with live(bot) as tg:
        tg.fake.user(9001, "群主", started=False)
        tg.fake.group(GROUP, {9001: "creator"})
        tg.fake.remove_bot(GROUP, by=9001)  # Telegram tells the bot: my_chat_member, kicked
        tg.settle()
        announce(bot, range(1))
        tg.tick()
        with bot.db.transaction() as session:
            assert session.scalar(select(Group.blocked_at)) is not None
            assert session.scalar(select(Outbox.held_at)) is not None
        assert tg.fake.texts_to(GROUP) == []
        tg.fake.groups[GROUP].bot_status = "member"  # added back
        tg.fake.inject(
            {"my_chat_member": tg.fake._member_change(tg.fake.groups[GROUP].chat(), 9001, "left", "member")}
        )
        tg.settle()
        tg.tick()
        assert tg.fake.texts_to(GROUP) == ["Action item #0 of issue #1 加装电梯 is done."]


def test_a_group_upgraded_while_polling_is_followed_from_its_service_message(bot_en: TestBot) -> None:
    bot = bot_en
    bound_group(bot)
    with live(bot) as tg:
        tg.fake.user(9001, "群主", started=False)
        tg.fake.group(GROUP, {9001: "creator"})
        tg.fake.migrate(GROUP, SUPERGROUP)
        tg.settle()
        with bot.db.transaction() as session:
            assert session.scalar(select(Group.chat_id)) == str(SUPERGROUP)
        announce(bot, range(1))
        tg.tick()
        assert tg.fake.texts_to(SUPERGROUP) == ["Action item #0 of issue #1 加装电梯 is done."]
