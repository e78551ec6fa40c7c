"""When a process looks for due work and messages: at once for what its own transactions wrote,
and at least every safety interval for what other processes wrote, not after every message."""

from __future__ import annotations

from bot.app import SAFETY_SECONDS
from flows import outbox
from storage.db import Database
from tests.harness import TestBot


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
