"""The outbox addressed to people and groups: the account chosen when a message is sent, held
messages, one target never holding up another, groups' messages merged, quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from sqlalchemy import func, select

from flows import outbox, settings
from flows.messages import Incoming, Window
from flows.outbox import DeliveryFailed, Pace
from storage.models import Account, DueWork, Group, Invite, Outbox, Person, Scope
from tests.harness import TestBot
from tests.test_decide import discussing
from tests.test_outbox import Channel

WECHAT = Window(5, timedelta(hours=48))  # what a resident's message opens on WeChat


def person_id(bot: TestBot, name: str) -> int:
    with bot.db.transaction() as session:
        found = session.scalar(select(Person.id).where(Person.name == name))
        assert found is not None
        return found


def account(
    bot: TestBot, name: str, channel: str, external: str, seen: datetime | None, window: Window | None = None
) -> None:
    """`window`: the chat window their last message (at `seen`) opened."""
    who = person_id(bot, name)
    with bot.db.transaction() as session:
        session.add(
            Account(channel=channel, external_id=external, person_id=who,
                    created_at=bot.clock.now(), last_seen_at=seen,
                    window_until=seen + window.lasts if seen and window else None,
                    window_left=window.messages if window else None)
        )  # fmt: skip


def queue(bot: TestBot, name: str, text: str = "你好") -> None:
    who = person_id(bot, name)
    with bot.db.transaction() as session:
        assert outbox.notify(
            session,
            who,
            bot.clock.now(),
            "Issue #{id} {title} was withdrawn by its author.",
            id=1,
            title=text,
        )


def test_a_console_bound_on_a_shared_database_does_not_take_a_residents_messages(bot: TestBot) -> None:
    """The account the person used last wins, not the newest one."""
    earlier = bot.clock.now() - timedelta(days=1)
    account(bot, "欧阳明", "flaky", "ouyang-phone", bot.clock.now())
    with bot.db.transaction() as session:  # an operator's console bound to him a day before
        session.add(
            Account(
                channel="console",
                external_id="person:1",
                person_id=1,
                created_at=earlier,
                last_seen_at=earlier,
            )
        )
    queue(bot, "欧阳明", "一")
    phone = Channel()
    assert bot.app.deliver({"flaky": phone, "console": bot.console}).sent == 1
    assert phone.to == ["欧阳明"]
    bot.say("/help", as_="欧阳明")  # now he speaks on the console: it is the one he used last
    queue(bot, "欧阳明", "二")
    out = bot.say("/help")
    assert "[→ 欧阳明] 议题 #1 二 已被发起人撤回。" in out and len(phone.received) == 1


def test_held_messages_go_to_a_new_account_once_the_person_binds_it(bot_en: TestBot) -> None:
    bot = bot_en
    account(bot, "刘洋", "flaky", "liu-phone", bot.clock.now())
    queue(bot, "刘洋")
    blocked = Channel(lambda text: DeliveryFailed("Forbidden: bot was blocked by the user", blocked=True))
    bot.app.deliver({"flaky": blocked})
    bot.app.deliver({"flaky": blocked})
    liu = person_id(bot, "刘洋")
    with bot.db.transaction() as session:
        assert session.scalar(select(Outbox.held_at)) is not None
        code = session.scalar(select(Invite.code).where(Invite.person_id == liu))
    bot.say("/as")
    joined = bot.say(f"/join {code}")  # a second way to reach him
    assert "Welcome, 刘洋" in joined and "[→ 刘洋] Issue #1 你好 was withdrawn by its author." in joined


def test_a_blocked_account_a_throttled_group_and_a_free_resident_at_once_the_resident_first(
    bot_en: TestBot,
) -> None:
    """Three targets at once, the resident's message the newest: the blocked account's is held,
    the group (at its limit already) is set aside, and the resident is not held up by either."""
    bot = bot_en
    account(bot, "欧阳明", "flaky", "blocked-one", bot.clock.now())
    account(bot, "王芳", "flaky", "free-one", bot.clock.now())
    ouyang, wang = person_id(bot, "欧阳明"), person_id(bot, "王芳")
    with bot.db.transaction() as session:
        group = Group(
            channel="flaky", chat_id="busy", community_id=1, scope_id=1, bound_by=1, bound_at=bot.clock.now()
        )
        session.add(group)
    busy = outbox.Recipient("flaky", "busy", "GROUP 梧桐社区", None, 1, group_id=1)
    for _ in range(2):  # the group has had its two messages of this minute
        bot.app.pacer.went(busy, Pace(2, 60))

    def failing(text: str) -> Exception | None:
        blocked = "blocked" in text
        return DeliveryFailed("Forbidden: bot was blocked by the user", blocked=True) if blocked else None

    flaky = Channel(failing, pace=Pace(2, 60))
    with bot.db.transaction() as session:  # oldest first: the blocked account's, the group's, the resident's
        withdrawn = "Issue #{id} {title} was withdrawn by its author."
        outbox.notify(session, ouyang, bot.clock.now(), withdrawn, id=1, title="blocked")
        community = session.get(Scope, 1)
        assert community is not None
        outbox.announce(session, community, bot.clock.now(), "Action item #{item} of issue #{id} {title} is done.",
                        item=1, id=1, title="x")  # fmt: skip
        outbox.notify(session, wang, bot.clock.now(), withdrawn, id=1, title="free")
    done = bot.app.deliver({"flaky": flaky})
    assert flaky.to == ["王芳"]  # served at once, past the two older ones
    assert done.sent == 1 and done.next_at == bot.clock.now() + timedelta(seconds=60)
    bot.app.deliver({"flaky": flaky})
    bot.advance(timedelta(seconds=60))
    assert bot.app.deliver({"flaky": flaky}).sent == 1 and flaky.to[-1] == "GROUP 梧桐社区"  # its minute over
    with bot.db.transaction() as session:
        rows = session.scalars(select(Outbox).order_by(Outbox.id)).all()
    assert [(r.sent_at is not None, r.held_at is not None) for r in rows] == [
        (False, True),  # 欧阳明's, held for him: his only account blocked the bot
        (True, False),
        (True, False),
    ]


def test_busy_groups_and_private_messages_share_the_channel_neither_waiting_for_the_other(
    bot_en: TestBot,
) -> None:
    """Two groups with ten messages each waiting (each too long to share a message with another),
    then thirty private ones, on a channel taking one message every half second: the groups go
    at an even share of their pace (one every 3 s) among the private messages, and once those are
    out, the rest of theirs at once (their pace allows it)."""
    bot = bot_en
    for name, external in (("王芳", "wang"), ("张强", "zhang")):
        account(bot, name, "flaky", external, bot.clock.now())
    with bot.db.transaction() as session:
        building = session.scalar(select(Scope.id).where(Scope.level == "building"))
        for chat, scope in (("g1", 1), ("g2", building)):  # the community's group and a building's
            session.add(Group(channel="flaky", chat_id=chat, title=chat, community_id=1, scope_id=scope,
                              bound_by=1, bound_at=bot.clock.now()))  # fmt: skip
        community = session.get(Scope, 1)
        assert community is not None
        for n in range(10):
            outbox.announce(session, community, bot.clock.now(), "Action item #{item} of issue #{id} {title} is done.",
                            item=n, id=1, title="加装电梯")  # fmt: skip
    for n in range(15):
        queue(bot, "王芳", f"w{n}")
        queue(bot, "张强", f"z{n}")
    sent: list[tuple[datetime, str]] = []

    def taking_its_time(text: str) -> None:
        sent.append((bot.clock.now(), text))
        bot.advance(timedelta(seconds=0.5))

    channel = Channel(lambda text: taking_its_time(text), max_length=60, pace=None)
    channel.pace = lambda recipient: Pace(20, 60) if recipient.is_group else None  # type: ignore[method-assign]
    assert bot.app.deliver({"flaky": channel}).sent == 50  # all of it in one run
    groups = [k for k, name in enumerate(channel.to) if name.startswith("GROUP")]
    last_private = max(k for k in range(50) if k not in groups)
    assert groups[:2] == [0, 1] and 2 not in groups  # the oldest first; a private one at once after
    for chat in {channel.to[k] for k in groups}:
        meanwhile = [sent[k][0] for k in groups if channel.to[k] == chat and k < last_private]
        assert len(meanwhile) >= 4  # the group was not held up by the private messages
        assert all(b - a >= timedelta(seconds=3) for a, b in pairwise(meanwhile))
    assert groups[-4:] == list(range(46, 50))  # the rest of theirs at once, nobody else waiting


def test_what_queues_up_for_a_group_goes_as_one_message_within_the_length_limit(bot_en: TestBot) -> None:
    bot = bot_en
    with bot.db.transaction() as session:
        session.add(
            Group(
                channel="flaky", chat_id="g", community_id=1, scope_id=1, bound_by=1, bound_at=bot.clock.now()
            )
        )
        community = session.get(Scope, 1)
        assert community is not None
        for n in range(100):
            outbox.announce(
                session,
                community,
                bot.clock.now(),
                "Action item #{item} of issue #{id} {title} is done.",
                item=n,
                id=1,
                title="加装电梯",
            )
    group = Channel(max_length=1000, pace=Pace(20, 60))
    assert bot.app.deliver({"flaky": group}).sent == len(group.received) < 10
    assert all(len(text) <= 1000 for text in group.received)
    assert "\n\n".join(group.received).count("is done.") == 100
    with bot.db.transaction() as session:
        assert all(r.sent_at is not None for r in session.scalars(select(Outbox)))


def test_quiet_hours_hold_messages_back_and_a_reminder_that_would_be_late_is_dropped(bot_en: TestBot) -> None:
    bot = bot_en
    bot.clock.at = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # 23:00 in Asia/Shanghai
    account(bot, "王芳", "flaky", "wang", bot.clock.now())
    queue(bot, "王芳", "夜里")
    phone = Channel()
    assert bot.app.deliver({"flaky": phone}).sent == 0
    assert bot.app.deliver({"flaky": phone}).next_at is None  # set to 07:00, not looked at again
    bot.advance(timedelta(hours=8))  # 07:00
    assert bot.app.deliver({"flaky": phone}).sent == 1
    with bot.db.transaction() as session:
        settings.put(session, 1, "quiet_hours", "off")
    queue(bot, "王芳", "白天")
    assert bot.app.deliver({"flaky": phone}).sent == 1


def test_a_vote_reminder_due_in_quiet_hours_goes_before_they_begin(bot_en: TestBot) -> None:
    bot = bot_en
    discussing(bot)
    bot.say("/as 孙丽华")  # a vote closing at 06:00 local: its 2-hour reminder would fall at 04:00
    for line in ("/openvote 1", "1", "2026-12-03 06:00", "1", "1", "1"):
        bot.say(line)
    with bot.db.transaction() as session:
        reminders = dict(
            session.execute(select(DueWork.key, DueWork.due_at).where(DueWork.kind == "remind_vote")).all()
        )
    assert reminders["remind_vote:1:2"] == datetime(2026, 12, 2, 13, 45, tzinfo=UTC)  # 21:45, before 22:00
    # the day-before reminder falls at 06:00: quiet hours end at 07:00, well before the close, so it
    # stays and the outbox holds it back until 07:00
    assert reminders["remind_vote:1:24"] == datetime(2026, 12, 1, 22, 0, tzinfo=UTC)


def test_a_held_reminder_whose_vote_has_closed_is_dropped_when_released(bot_en: TestBot) -> None:
    bot = bot_en
    discussing(bot)
    with bot.db.transaction() as session:  # 刘洋 reads on a phone that has blocked the bot
        session.add(Account(channel="flaky", external_id="liu", person_id=7, created_at=bot.clock.now(),
                            last_seen_at=bot.clock.now(), blocked_at=bot.clock.now()))  # fmt: skip
    bot.say("/as 孙丽华")
    for line in ("/openvote 1", "1", "3d", "1", "1", "1"):
        bot.say(line)
    bot.app.deliver({"flaky": Channel()})
    bot.say("/closevote 1")
    bot.app.dispatcher.handle(Incoming("flaky", "liu", "liu", text="/help"))  # he writes again
    phone = Channel()
    bot.app.deliver({"flaky": phone})
    assert len(phone.received) == 1 and "has closed" in phone.received[0]  # the result, not the invitation
    with bot.db.transaction() as session:
        dropped = session.scalars(
            select(Outbox.msgid).where(Outbox.person_id == 7, Outbox.error == outbox.DROPPED)
        )
        assert [m.split(";")[0] for m in dropped] == ["A vote has opened on issue #{id} {title}"]


def test_a_message_held_while_a_chat_window_was_closed_goes_once_the_person_writes(bot_en: TestBot) -> None:
    bot = bot_en
    account(
        bot, "王芳", "wechat", "wang-openid", bot.clock.now() - timedelta(days=3), WECHAT
    )  # 48 hours passed
    queue(bot, "王芳", "窗口")
    service = Channel()
    bot.app.deliver({"wechat": service})
    with bot.db.transaction() as session:
        assert session.scalar(select(Outbox.held_at)) is not None
    she_writes = Incoming("wechat", "wang-openid", "wang-openid", text="/help", window=WECHAT)
    bot.app.dispatcher.handle(she_writes)
    assert bot.app.deliver({"wechat": service}).sent == 1 and "窗口" in service.received[0]


def reply(bot: TestBot, name: str, text: str) -> None:
    with bot.db.transaction() as session:
        assert outbox.notify_reply(session, person_id(bot, name), bot.clock.now(), text)


def test_a_chat_window_takes_as_many_messages_as_it_allows_and_what_queued_up_goes_merged(
    bot_en: TestBot,
) -> None:
    bot = bot_en
    account(bot, "王芳", "wechat", "wang-openid", bot.clock.now(), Window(2, timedelta(hours=48)))
    service = Channel()
    for n in range(3):  # three messages, one at a time: the window allows two
        reply(bot, "王芳", f"第{n}条")
        bot.app.deliver({"wechat": service})
    assert service.received == ["第0条", "第1条"]
    for n in range(3, 6):
        reply(bot, "王芳", f"第{n}条")
    with bot.db.transaction() as session:
        assert session.scalar(select(func.count()).where(Outbox.held_at.is_not(None))) == 1
    bot.app.dispatcher.handle(Incoming("wechat", "wang-openid", "wang-openid", text="/help", window=WECHAT))
    bot.app.deliver({"wechat": service})  # the backlog, merged into one message of the new window
    assert service.received[2:] == ["第2条\n\n第3条\n\n第4条\n\n第5条"]
    with bot.db.transaction() as session:
        assert session.scalar(select(Account.window_left).where(Account.external_id == "wang-openid")) == 4
