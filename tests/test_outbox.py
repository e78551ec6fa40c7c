"""The outbox: what the bot says on its own is written with its cause and delivered once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from flows import outbox
from flows.messages import Incoming, Reply
from flows.outbox import DeliveryFailed, Pace, Pacer, Recipient, backoff, split, utf16_units
from storage.models import Account, Outbox
from tests.harness import TestBot, comments_on_another_channel


class Channel:
    """A channel for the outbox's tests: records what it takes; `failing` says how it fails."""

    quiet_hours = True
    at_once = 1
    measure = staticmethod(utf16_units)

    def __init__(
        self,
        failing: Callable[[str], Exception | None] = lambda text: None,
        max_length: int | None = None,
        pace: Pace | None = None,
    ):
        self.failing, self.max_length, self._pace = failing, max_length, pace
        self.received: list[str] = []
        self.to: list[str] = []  # who each message went to

    def send(self, recipient: Recipient, message: Reply) -> str:
        exc = self.failing(message.text)
        if exc is not None:
            raise exc
        self.received.append(message.text)
        self.to.append(recipient.name)
        return str(len(self.received))

    def edit(self, recipient: Recipient, ref: str, message: Reply) -> None:
        self.received.append(f"edited {ref}: {message.text}")

    def pace(self, recipient: Recipient) -> Pace | None:
        return self._pace


def works() -> dict[str, Channel]:
    return {"flaky": Channel()}


def test_a_channel_that_fails_three_times_then_works_gets_each_message_once(bot: TestBot) -> None:
    comments_on_another_channel(bot, "flaky")
    failures = iter(range(3))
    flaky = Channel(lambda text: DeliveryFailed("timeout") if next(failures, None) is not None else None)
    attempts = 0
    while len(flaky.received) < 3 and attempts < 20:
        attempts += 1
        bot.app.deliver({"flaky": flaky})
        bot.advance(timedelta(minutes=10))
    assert sorted(flaky.received) == sorted(
        f"您的议题 #1 有新评论 C{c}：{t}" for c, t in ((1, "一"), (2, "二"), (3, "三"))
    )
    assert bot.app.deliver({"flaky": flaky}).sent == 0  # nothing left, nothing sent twice
    with bot.db.transaction() as session:
        rows = session.scalars(select(Outbox)).all()
    assert all(r.sent_at is not None and r.failed_at is None for r in rows)
    assert sum(r.attempts for r in rows) == 6


def test_backoff_waits_on_the_same_clock_and_holds_back_the_chats_other_messages(bot: TestBot) -> None:
    comments_on_another_channel(bot, "flaky")
    failing = Channel(lambda text: DeliveryFailed("503"))
    assert bot.app.deliver({"flaky": failing}).sent == 0
    assert len(failing.received) == 0  # the first failed: the chat's other two were not tried
    assert bot.app.deliver(works()).sent == 0  # not due again yet, nor the others to that chat
    bot.advance(backoff(1))
    assert bot.app.deliver(works()).sent == 3


def test_a_blocked_account_holds_its_messages_until_the_person_writes_again(bot: TestBot) -> None:
    comments_on_another_channel(bot, "flaky", "blocker")
    blocked = DeliveryFailed("Forbidden: bot was blocked by the user", blocked=True)
    assert bot.app.deliver({"flaky": Channel(lambda text: blocked)}).sent == 0
    bot.advance(timedelta(days=1))
    assert bot.app.deliver(works()).sent == 0
    with bot.db.transaction() as session:
        rows = session.scalars(select(Outbox).order_by(Outbox.id)).all()
        assert all(r.held_at is not None and r.failed_at is None and r.sent_at is None for r in rows)
        assert session.scalar(select(Account.blocked_at).where(Account.external_id == "blocker")) is not None
    # the person writes again from that account: unblocked, and what was held goes out
    bot.app.dispatcher.handle(Incoming("flaky", "blocker", "blocker", text="/help"))
    channel = Channel()
    assert bot.app.deliver({"flaky": channel}).sent == 3
    assert channel.received == [
        f"您的议题 #1 有新评论 C{c}：{t}" for c, t in ((1, "一"), (2, "二"), (3, "三"))
    ]


def test_an_unexpected_error_in_a_channel_is_logged_and_tried_again(bot: TestBot, caplog) -> None:  # type: ignore[no-untyped-def]
    comments_on_another_channel(bot, "flaky")
    assert bot.app.deliver({"flaky": Channel(lambda text: ValueError("a bug"))}).sent == 0
    assert "outbox row 1: unexpected error" in caplog.text and "ValueError: a bug" in caplog.text
    with bot.db.transaction() as session:
        assert [r.error for r in session.scalars(select(Outbox).order_by(Outbox.id))] == [
            "ValueError",
            None,
            None,
        ]
    bot.advance(backoff(1))
    assert bot.app.deliver(works()).sent == 3


def test_a_long_message_goes_in_parts_and_a_retry_resumes_where_it_stopped(bot: TestBot) -> None:
    comments_on_another_channel(bot, "flaky")
    with bot.db.transaction() as session:
        session.execute(Outbox.__table__.delete().where(Outbox.id > 1))
        row = session.get(Outbox, 1)
        assert row is not None
        row.rendered = "第一段\n第二段\n第三段"  # as if rendered by an earlier attempt
    calls = iter(["ok", "fail", "ok", "ok"])
    short = Channel(lambda text: DeliveryFailed("timeout") if next(calls) == "fail" else None, max_length=4)
    assert bot.app.deliver({"flaky": short}).sent == 0  # the first part went, the second failed
    bot.advance(backoff(1))
    assert bot.app.deliver({"flaky": short}).sent == 1
    assert short.received == ["第一段", "第二段", "第三段"]  # nothing sent twice
    with bot.db.transaction() as session:
        row = session.get(Outbox, 1)
        assert row is not None and row.parts_sent == 3 and row.sent_at is not None and row.attempts == 2


def test_a_retry_sends_the_words_of_the_first_attempt(bot: TestBot) -> None:
    comments_on_another_channel(bot, "flaky")
    bot.app.deliver({"flaky": Channel(lambda text: DeliveryFailed("timeout"))})  # the first is tried
    with bot.db.transaction() as session:  # the reader switches language between the attempts
        for account in session.scalars(select(Account).where(Account.channel == "flaky")):
            account.locale = "en"
            if account.person:
                account.person.locale = "en"
    bot.advance(backoff(1))
    channel = Channel()
    assert bot.app.deliver({"flaky": channel}).sent == 3
    assert channel.received[0] == "您的议题 #1 有新评论 C1：一"  # as first rendered
    assert channel.received[1:] == [
        "New comment C2 on your issue #1: 二",
        "New comment C3 on your issue #1: 三",
    ]


@given(st.text(alphabet=st.sampled_from("ab \n\r议😀"), max_size=3000), st.integers(2, 500))
def test_parts_fit_say_something_and_keep_every_visible_character(text: str, limit: int) -> None:
    parts = split(text, limit)
    assert all(utf16_units(part) <= limit and part.strip() for part in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())  # all but white space kept


def test_parts_are_cut_at_line_ends_where_there_are_some() -> None:
    lines = ["甲" * 3000, "乙" * 3000, "丙" * 10]
    assert split("\n".join(lines), 4096) == [lines[0], lines[1] + "\n" + lines[2]]
    assert split("x" * 5000, 4096) == ["x" * 4096, "x" * 904]
    assert split("短", None) == ["短"]
    assert split("😀" * 3, 4) == ["😀😀", "😀"]  # an emoji is two units to Telegram
    assert split("甲\r\n乙", 2) == ["甲", "乙"]


def test_the_console_prints_what_others_receive(bot: TestBot) -> None:
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运", "停了三次。")
    reply = bot.say("/comment 1 我也遇到过", as_="王芳")
    assert "[→ 欧阳明] 您的议题 #1 有新评论 C1：我也遇到过" in reply


def test_a_resident_is_answered_while_a_channel_is_sending(bot: TestBot) -> None:
    """No transaction is open during a send: on SQLite one would hold the write lock, and every
    resident's message would wait for Telegram."""
    comments_on_another_channel(bot, "flaky")
    answers: list[str] = []

    def meanwhile(text: str) -> None:
        replies = bot.app.dispatcher.handle(Incoming("console", "person:2", "console", text="/help"))
        answers.append(replies[0].text)

    assert bot.app.deliver({"flaky": Channel(lambda text: meanwhile(text))}).sent == 3
    assert len(answers) == 3 and all(a.startswith("可用命令：") for a in answers), answers


def test_a_message_that_cannot_be_rendered_does_not_hold_up_the_others(bot: TestBot, caplog) -> None:  # type: ignore[no-untyped-def]
    comments_on_another_channel(bot, "flaky")
    render = bot.app.render

    def broken_for_the_first(session, reader, row):  # type: ignore[no-untyped-def]
        if row.params.get("c") == 1:
            raise KeyError("c")
        return render(session, reader, row)

    channel = Channel()
    assert (
        outbox.deliver_due(
            bot.db, bot.clock.now, {"flaky": channel}, broken_for_the_first, Pacer(bot.clock.now)
        ).sent
        == 2
    )
    assert "outbox row 1: unexpected error" in caplog.text
    with bot.db.transaction() as session:
        first = session.get(Outbox, 1)
        assert first is not None and first.sent_at is None and first.error == "KeyError"
        assert first.next_attempt_at == bot.clock.now() + backoff(1)  # tried again, like a failed delivery


def test_a_sender_that_lost_its_lease_stops_instead_of_sending_alongside_another(bot: TestBot) -> None:
    comments_on_another_channel(bot, "flaky")
    with bot.db.transaction() as session:
        session.execute(Outbox.__table__.delete().where(Outbox.id > 1))
        session.execute(Outbox.__table__.update().values(rendered="一\n二\n三"))

    def taken_over_at_the_second(text: str) -> None:
        if text == "二":  # meanwhile another sender found the lease run out and took the row
            with bot.db.transaction() as session:
                session.execute(
                    Outbox.__table__.update().values(next_attempt_at=bot.clock.now() + timedelta(minutes=9))
                )

    channel = Channel(lambda text: taken_over_at_the_second(text), max_length=2)
    assert bot.app.deliver({"flaky": channel}).sent == 0
    assert channel.received == ["一", "二"]  # not 三: that is the other sender's now
    with bot.db.transaction() as session:
        row = session.get(Outbox, 1)
        assert row is not None and row.sent_at is None and row.parts_sent == 1


def test_delivery_stops_between_messages_when_asked(bot: TestBot) -> None:
    comments_on_another_channel(bot, "flaky")
    channel = Channel()
    assert bot.app.deliver({"flaky": channel}, stopping=lambda: len(channel.received) >= 1).sent == 1
    assert bot.app.deliver({"flaky": channel}).sent == 2  # the rest, untouched by the stop
