"""When a process looks for due work and messages: at once for what its own transactions wrote,
and at least every safety interval for what other processes wrote, not after every message."""

from __future__ import annotations

from datetime import timedelta

from bot.app import SAFETY_SECONDS
from flows import outbox
from flows.outbox import Pace
from storage.db import Database
from storage.models import Group, Scope
from tests.harness import TestBot
from tests.test_outbox import Channel


def test_a_message_queued_by_another_process_is_delivered_within_the_safety_interval(bot: TestBot) -> None:
    bot.say("/as 欧阳明")
    bot.say("/help")  # the console has looked at the tables just now
    other = Database(bot.db.url)  # a web worker, say
    try:
        with other.transaction() as session:
            assert outbox.notify(
                session,
                1,
                bot.clock.now(),
                "Issue #{id} {title} was withdrawn by its author.",
                id=7,
                title="路灯",
            )
    finally:
        other.dispose()
    assert "[→" not in bot.say("/help")  # not looked for after every line
    bot.app._looked -= SAFETY_SECONDS  # the safety interval has passed
    assert "[→ 欧阳明] 议题 #7 路灯 已被发起人撤回。" in bot.say("/help")


def test_what_its_own_transactions_write_is_delivered_at_once(bot: TestBot) -> None:
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运")
    bot.say("/help")
    assert "[→ 欧阳明] 您的议题 #1 有新评论 C1：同意" in bot.say("/comment 1 同意", as_="王芳")


def test_a_chat_set_aside_is_looked_at_again_when_it_may_go_not_at_every_step(bot_en: TestBot) -> None:
    bot = bot_en
    with bot.db.transaction() as session:
        session.add(
            Group(
                channel="flaky",
                chat_id="busy",
                community_id=1,
                scope_id=1,
                bound_by=1,
                bound_at=bot.clock.now(),
            )
        )
        community = session.get(Scope, 1)
        assert community is not None
        for n in range(3):
            outbox.announce(session, community, bot.clock.now(), "Action item #{item} of issue #{id} {title} is done.",
                            item=n, id=1, title="x")  # fmt: skip
    group = Channel(pace=Pace(1, 60), max_length=60)  # one message each: two would not fit in one
    assert bot.app.step({"flaky": group}) == (0, 1)
    assert not bot.app.due()  # the other two wait for the group's minute: nothing to do till then
    bot.advance(timedelta(seconds=59))
    assert not bot.app.due()
    bot.advance(timedelta(seconds=1))
    assert bot.app.due() and bot.app.step({"flaky": group}) == (0, 1)
