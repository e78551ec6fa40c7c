"""WeCom group robots through the real sender (httpx) against a fake robot endpoint: bound by the
operator, what a building's group reads of a vote, 20 a minute with nothing dropped, the byte
limits, a slow robot holding up nobody, a robot refused and replaced, its key never shown."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.channels.wecom import WeComRobots, as_markdown, mask
from bot.cli import main
from flows import groups, outbox
from flows.messages import Reply
from flows.outbox import Pacer
from storage.models import Group, Outbox, Person, Scope
from tests.fake_wecom import FakeWeCom, running
from tests.harness import TestBot
from tests.test_decide import discussing, open_vote
from tests.test_outbox import Channel

B1, B2 = "梧桐社区/东片区/东一网格/1栋", "梧桐社区/东片区/东一网格/2栋"
KEY1, KEY2 = "k1-0d1e2f3a-secret-one", "k2-4b5c6d7e-secret-two"
COMMENT = "New comment C{c} on your issue #{id}: {text}"


@pytest.fixture
def fake(bot: TestBot) -> Iterator[FakeWeCom]:
    with running(FakeWeCom(clock=bot.clock.now)) as server:
        yield server


def robots(bot: TestBot, name: str = "梧桐社区服务号") -> WeComRobots:
    sender = WeComRobots(replace(bot.app.config, wechat_account_name=name))
    asyncio.run(sender.start())
    return sender


def add(bot: TestBot, path: str, url: str, *more: str) -> None:
    assert main(["wechat", "robot", "add", path, url, "--db", bot.db.url, *more]) == 0


def group_id(bot: TestBot, path: str) -> int:
    with bot.db.transaction() as session:
        found = session.scalar(
            select(Group.id)
            .join(Scope, Scope.id == Group.scope_id)
            .where(Scope.path == path, Group.unbound_at.is_(None))
        )
        assert found is not None
        return found


def queue(bot: TestBot, group: int, *texts: str) -> None:
    with bot.db.transaction() as session:
        for n, text in enumerate(texts):
            outbox.notify_group(session, group, bot.clock.now(), COMMENT, c=n, id=1, text=text)


def test_the_operator_binds_lists_and_removes_robots_and_their_keys_are_never_shown(
    bot: TestBot, fake: FakeWeCom, capsys: pytest.CaptureFixture[str]
) -> None:
    url = fake.robot(KEY1)
    add(bot, B1, url)
    assert main(["wechat", "robot", "list", "--db", bot.db.url]) == 0
    assert main(["groups", "--db", bot.db.url]) == 0
    shown = capsys.readouterr().out
    assert KEY1 not in shown and "key=k1-0****" in shown and f"{B1}\t" in shown and "纯文本" in shown
    # what is not a robot's URL, or not a scope, is refused in words and changes nothing
    assert main(["wechat", "robot", "add", B2, "https://example.org/hook", "--db", bot.db.url]) == 2
    assert main(["wechat", "robot", "add", "梧桐社区/9栋", fake.url(KEY2), "--db", bot.db.url]) == 2
    assert main(["wechat", "robot", "add", B2, url, "--db", bot.db.url]) == 2  # bound to 1栋 already
    err = capsys.readouterr().err
    assert "不是机器人的 Webhook 地址" in err and "没有范围 梧桐社区/9栋" in err and "已绑定到 " + B1 in err
    assert KEY1 not in err
    add(bot, B1, fake.robot(KEY2), "--markdown")  # 1栋's robot made anew: it takes the old one's place
    assert "取代" in capsys.readouterr().out
    main(["wechat", "robot", "list", "--db", bot.db.url])
    assert "key=k2-4****\tMarkdown" in capsys.readouterr().out
    assert main(["wechat", "robot", "remove", B1, "--db", bot.db.url]) == 0
    assert main(["wechat", "robot", "remove", B1, "--db", bot.db.url]) == 2
    assert main(["wechat", "robot", "list", "--db", bot.db.url]) == 0
    assert "尚未绑定机器人" in capsys.readouterr().out


def test_a_buildings_robot_reads_its_issue_and_vote_with_the_choice_numbers_and_where_to_vote(
    bot: TestBot, fake: FakeWeCom
) -> None:
    add(bot, B1, fake.robot(KEY1))
    add(bot, B2, fake.robot(KEY2))
    sender = robots(bot)
    discussing(bot)
    open_vote(bot, "1", "3d", "1", "1", "1")
    bot.app.deliver({"wecom": sender})
    building = fake.read(KEY1)
    assert "议题 #1 1栋电梯经常停运（1栋）已获 3 户附议，进入讨论。" in building[0]
    vote = building[1]
    assert "开始表决" in vote and "[1] 同意 — 0\n[2] 反对 — 0\n[3] 弃权 — 0\n" in vote
    assert "发送 投票 1 选项编号 投票" in vote and "梧桐社区服务号" in vote
    assert fake.read(KEY2) == []  # 2栋 hears nothing of 1栋's issue
    assert "投票已记录" in bot.say("/vote 1 1", as_="王芳")
    bot.say("/closevote 1", as_="孙丽华")
    bot.app.deliver({"wecom": sender})
    result = fake.read(KEY1)[-1]
    assert "表决已结束" in result and "[1] 同意 — 1" in result
    with bot.db.transaction() as session:  # a robot's message cannot be edited: none is kept live
        assert not session.scalars(select(Outbox.sent_ref).where(Outbox.group_id.is_not(None))).first()


def test_twenty_a_minute_what_queues_up_merges_and_nothing_is_dropped(bot: TestBot, fake: FakeWeCom) -> None:
    add(bot, B1, fake.robot(KEY1))
    sender, group = robots(bot), group_id(bot, B1)
    texts = [f"第{n}号意见：楼道灯坏了。" for n in range(30)]
    for text in texts:  # one by one, each sent as soon as it is queued while the pace allows
        queue(bot, group, text)
        bot.app.deliver({"wecom": sender})
    assert len(fake.read(KEY1)) == 20 and not fake.refused
    bot.advance(timedelta(minutes=1))
    assert bot.app.deliver({"wecom": sender}).sent == 1  # the ten waiting, as one message
    assert all(text in "\n".join(fake.read(KEY1)) for text in texts)
    # another process (its own pacer) sends to the same robot: WeCom's 45009 is a wait, not a loss
    bot.app.pacer = Pacer(bot.clock.now)
    queue(bot, group, *(f"第{n}号补充" for n in range(19)))
    while bot.app.deliver({"wecom": sender}).sent:
        queue(bot, group, "又一条")
    assert fake.refused == [(KEY1, 45009)]
    with bot.db.transaction() as session:  # waits out WeCom's minute
        waiting = session.execute(
            select(Outbox.next_attempt_at, Outbox.failed_at).where(Outbox.sent_at.is_(None))
        ).all()
    assert waiting == [(bot.clock.now() + timedelta(minutes=1), None)]
    bot.advance(timedelta(minutes=1))
    bot.app.deliver({"wecom": sender})
    with bot.db.transaction() as session:
        unsent = session.scalars(select(Outbox.id).where(Outbox.sent_at.is_(None))).all()
    assert unsent == [] and "又一条" in fake.read(KEY1)[-1]


def test_long_messages_fit_the_robots_byte_limits_as_text_and_as_markdown(
    bot: TestBot, fake: FakeWeCom
) -> None:
    add(bot, B1, fake.robot(KEY1))
    add(bot, B2, fake.robot(KEY2), "--markdown")
    bot.app.config = replace(bot.app.config, public_url="https://yishi.example")
    sender = robots(bot)
    long = "电梯的问题已经持续了很久，" * 30  # 390 characters, 1,170 bytes
    queue(bot, group_id(bot, B1), *[long] * 4)
    queue(bot, group_id(bot, B2), *[long] * 4)
    bot.app.deliver({"wecom": sender})
    bot.advance(timedelta(minutes=1))
    bot.app.deliver({"wecom": sender})
    assert not fake.refused
    text, marked = fake.read(KEY1), fake.read(KEY2)
    assert len(text) == 4 and all(len(part.encode()) <= 2048 for part in text)
    kinds = {r.msgtype for r in fake.received if r.key == KEY2}
    assert kinds == {"markdown"} and all(part.startswith("**") for part in marked)
    assert "".join(text).count(long) == 4 == "".join(marked).count(long)
    link = "https://yishi.example/c/1/issues/1"  # each message's issue
    assert text[0].endswith("\n" + link) and marked[0].endswith(f"\n[{link}]({link})")


def test_markdown_makes_the_first_line_bold_and_links_clickable() -> None:
    assert as_markdown("议题 #1 开始表决\n[1] 同意\nhttps://yishi.example/c/1") == (
        "**议题 #1 开始表决**\n[1] 同意\n[https://yishi.example/c/1](https://yishi.example/c/1)"
    )
    assert mask("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx") == (
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a****"
    )


def test_a_slow_robot_holds_up_no_other_robot_nor_any_resident(bot: TestBot, fake: FakeWeCom) -> None:
    add(bot, B1, fake.robot(KEY1))
    add(bot, B2, fake.robot(KEY2))
    fake.delay[KEY1] = 2.0
    sender, resident = robots(bot), Channel()
    queue(bot, group_id(bot, B1), "一栋的消息")
    queue(bot, group_id(bot, B2), "二栋的消息")
    bot.say("/as 欧阳明")  # a resident with an account, on a channel of its own here
    with bot.db.transaction() as session:
        person = session.scalar(select(Person.id).where(Person.name == "欧阳明"))
        assert outbox.notify(session, person, bot.clock.now(), COMMENT, c=1, id=1, text="给居民的消息")
    sent_at: list[float] = []
    send = resident.send
    resident.send = lambda recipient, message: (sent_at.append(time.monotonic()), send(recipient, message))[1]  # type: ignore[method-assign]
    started = time.monotonic()
    done = bot.app.deliver({"wecom": sender, "console": resident})
    assert done.sent == 3
    slow, quick = (next(r.wall for r in fake.received if r.key == k) for k in (KEY1, KEY2))
    assert slow - started >= 2.0
    assert quick < slow and sent_at[0] < slow  # both went while the slow robot was still answering


def test_a_robot_wecom_refuses_holds_its_messages_until_it_is_bound_again(
    bot: TestBot, fake: FakeWeCom, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    add(bot, B1, fake.url(KEY1))  # a key WeCom does not know (the robot was removed from its group)
    sender = robots(bot)
    queue(bot, group_id(bot, B1), "第一条", "第二条")
    with caplog.at_level(logging.DEBUG):
        bot.app.deliver({"wecom": sender})  # refused: the group is blocked …
        bot.app.deliver({"wecom": sender})  # … and what waits for it held
    assert fake.refused == [(KEY1, 93000)] and KEY1 not in caplog.text
    with bot.db.transaction() as session:
        rows = session.execute(select(Outbox.held_at, Outbox.error)).all()
    assert all(held is not None and KEY1 not in (error or "") for held, error in rows)
    main(["wechat", "robot", "list", "--db", bot.db.url])
    assert "企业微信自" in capsys.readouterr().out
    with bot.db.transaction() as session:  # a new robot for 1栋: what was held for the old one goes to it
        _, replaced = groups.attach(
            session, groups.scope_at(session, B1), "wecom", fake.robot(KEY2), bot.clock.now()
        )
    assert replaced
    bot.app.deliver({"wecom": sender})
    assert "第一条" in fake.read(KEY2)[0] and "第二条" in fake.read(KEY2)[0]


def test_a_robot_message_never_carries_buttons_and_a_secret_votes_pointer_says_where(bot: TestBot) -> None:
    sender = robots(bot, name="")
    recipient = outbox.Recipient("wecom", "http://127.0.0.1:9/x?key=k", "GROUP 1栋", "zh_CN", 1, group_id=1)
    body = sender.body(recipient, Reply("议题 #1 开始表决\n不记名投票", start="vote_1"))
    assert body == {
        "msgtype": "text",
        "text": {"content": "议题 #1 开始表决\n不记名投票\n请将上面的投票指令发送到本社区的公众号。"},
    }
    with bot.db.transaction() as session:
        assert groups.listed(session, "wecom") == []
