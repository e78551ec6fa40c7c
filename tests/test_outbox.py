"""The outbox: what the bot says on its own is written with its cause and delivered once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from flows.outbox import DeliveryFailed, backoff
from storage.models import Account, Outbox
from tests.harness import TestBot


def make_notifications(bot: TestBot) -> None:
    """Three comments by others on 欧阳明's issue: three messages for him."""
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运", "停了三次。")
    with bot.db.transaction() as session:  # his account moves to a channel the console does not serve
        session.execute(Outbox.__table__.delete())
        for account in session.scalars(select(Account).where(Account.external_id == "person:1")):
            account.channel = "flaky"
    for who, text in (("李伟@1栋-102", "一"), ("王芳", "二"), ("张强", "三")):
        bot.say(f"/comment 1 {text}", as_=who)


def test_a_channel_that_fails_three_times_then_works_gets_each_message_once(bot: TestBot) -> None:
    make_notifications(bot)
    received: list[str] = []
    failures = iter(range(3))

    def flaky(account: Account, text: str) -> None:
        if next(failures, None) is not None:
            raise DeliveryFailed("timeout")
        received.append(text)

    attempts = 0
    while len(received) < 3 and attempts < 20:
        attempts += 1
        bot.app.deliver({"flaky": flaky})
        bot.advance(timedelta(minutes=10))
    assert sorted(received) == sorted(
        f"您的议题 #1 有新评论 C{c}：{t}" for c, t in ((1, "一"), (2, "二"), (3, "三"))
    )
    assert bot.app.deliver({"flaky": flaky}) == 0  # nothing left, nothing sent twice
    with bot.db.transaction() as session:
        rows = session.scalars(select(Outbox)).all()
    assert all(r.sent_at is not None and r.failed_at is None for r in rows)
    assert sum(r.attempts for r in rows) == 6


def test_backoff_waits_on_the_same_clock(bot: TestBot) -> None:
    make_notifications(bot)

    def down(account: Account, text: str) -> None:
        raise DeliveryFailed("503")

    assert bot.app.deliver({"flaky": down}) == 0
    assert bot.app.deliver({"flaky": lambda a, t: None}) == 0  # not due again yet
    bot.advance(backoff(1))
    assert bot.app.deliver({"flaky": lambda a, t: None}) == 3


def test_a_blocked_account_fails_for_good(bot: TestBot) -> None:
    make_notifications(bot)

    def blocked(account: Account, text: str) -> None:
        raise DeliveryFailed("Forbidden: bot was blocked by the user", permanent=True)

    bot.app.deliver({"flaky": blocked})
    bot.advance(timedelta(days=1))
    assert bot.app.deliver({"flaky": lambda a, t: None}) == 0
    with bot.db.transaction() as session:
        assert all(
            r.failed_at is not None and "blocked" in (r.error or "") for r in session.scalars(select(Outbox))
        )


def test_the_console_prints_what_others_receive(bot: TestBot) -> None:
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运", "停了三次。")
    reply = bot.say("/comment 1 我也遇到过", as_="王芳")
    assert "[→ 欧阳明] 您的议题 #1 有新评论 C1：我也遇到过" in reply
