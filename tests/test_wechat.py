"""The Official Account through `yishi serve`'s callback, with the real wechatpy against a fake
WeChat API: callbacks signed (and encrypted) with wechatpy's crypto, as WeChat sends them."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select, text

from bot.channels.wechat import callback as callback_module
from bot.config import Config
from flows import invites
from flows.messages import Incoming
from storage.db import Database
from storage.models import (
    Account,
    Ballot,
    Comment,
    HandledUpdate,
    IssuePhoto,
    Outbox,
    Participation,
    PlatformToken,
    Support,
)
from tests.fake_wechat import AES_KEY, APP_ID, APP_SECRET, TOKEN, FakeWeChat, read_reply, running, signed, xml
from tests.harness import BALLOT_KEY, YISHI, TestBot, free_port, serving
from tests.test_decide import discussing, open_vote
from tests.test_races import bot as pg_bot  # noqa: F401  (the PostgreSQL-only TestBot)

PICTURE = b"\xff\xd8\xff\xe0" + b"JFIF-picture-of-the-lift" * 40
_ids = itertools.count(7_000_000_000_000_000_000)


def config_for(bot: TestBot, fake: FakeWeChat, safe: bool = False) -> Config:
    return replace(
        bot.app.config,
        wechat_token=TOKEN,
        wechat_app_id=APP_ID,
        wechat_app_secret=APP_SECRET,
        wechat_api_url=fake.api_url,
        wechat_aes_key=AES_KEY if safe else "",
    )


@contextmanager
def official_account(bot: TestBot, safe: bool = False) -> Iterator[tuple[FakeWeChat, str]]:
    with running(FakeWeChat()) as fake, serving(bot.app, config_for(bot, fake, safe)) as url:
        yield fake, url


def post(url: str, query: dict[str, str], body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(f"{url}/wechat?{urlencode(query)}", body, {"Content-Type": "text/xml"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as refused:
        with refused:
            return refused.code, refused.read()


@dataclass
class Resident:
    """A follower of the Official Account, writing to it as WeChat relays it."""

    url: str
    fake: FakeWeChat
    openid: str
    safe: bool = False

    def send(self, kind: str, msg_id: int | None = None, **fields: str) -> tuple[int, str]:
        self.fake.interacted(self.openid, "event" if kind == "event" else "message")
        ident = None if kind == "event" else (msg_id or next(_ids))
        query, body = signed(xml(self.openid, kind, int(time.time()), ident, **fields), self.safe)
        status, data = post(self.url, query, body)
        return status, read_reply(data, self.safe) if status == 200 else data.decode()

    def says(self, text: str) -> str:
        status, reply = self.send("text", Content=text)
        assert status == 200, reply
        return reply


def code_of(bot: TestBot, name: str) -> str:
    with bot.db.transaction() as session:
        return next(code for who, _, _, code in invites.open_codes(session, None) if who == name)


def wait_for(condition, what: str, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"waited in vain for {what}"
        time.sleep(0.02)
    return found


def test_a_resident_joins_raises_an_issue_with_a_picture_and_votes_in_chinese(bot: TestBot) -> None:
    with official_account(bot) as (fake, url):
        ou = Resident(url, fake, "oYangMing")
        assert "加入" in ou.send("event", Event="subscribe")[1]  # the greeting says how to join
        assert "欢迎，欧阳明" in ou.says(f"加入 {code_of(bot, '欧阳明')}")
        assert "请输入议题标题" in ou.says("提议")
        assert "请描述" in ou.says("1栋电梯经常停运")
        fake.media["media-lift"] = PICTURE
        assert "照片已随议题保存" in ou.send("image", PicUrl="http://x/p.jpg", MediaId="media-lift")[1]
        scopes = ou.says("这个月已经停了三次。")
        assert "[1] " in scopes  # the options numbered in the text: typing the number answers
        assert "发布" in ou.says("1")
        assert "已发布议题 #1" in ou.says("1")
        with bot.db.transaction() as session:
            assert session.scalar(select(IssuePhoto.data)) == PICTURE
        for who in ("李伟@1栋-102", "王芳"):
            bot.say("/support 1", as_=who)
        open_vote(bot, "1", "3d", "1", "1", "1")
        assert "投票已记录：同意" in ou.says("投票 1 1")
        assert "投票已更改为：反对" in ou.says("投票 1 2")
    with bot.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Ballot)) == 1


def test_a_voice_message_is_read_back_and_counts_only_once_confirmed(bot: TestBot) -> None:
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运")
    with official_account(bot) as (fake, url):
        li = Resident(url, fake, "oLiWei")
        li.says(f"加入 {code_of(bot, '李伟')}")
        asked = li.send("voice", MediaId="m1", Format="amr", Recognition="附议一。")[1]
        assert "您说的是：附议 1" in asked and "[1] 是" in asked
        with bot.db.transaction() as session:  # nothing counted yet
            assert session.scalar(select(func.count()).select_from(Support)) == 1
        assert "您已附议议题 #1" in li.says("是")
        assert li.send("voice", MediaId="m2", Format="amr", Recognition="附议一")[1].startswith("您说的是")
        assert "已取消" in li.says("否")
        assert "请打字" in li.send("voice", MediaId="m3", Format="amr")[1]  # nothing recognised
    with bot.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Support)) == 2


def test_a_retried_callback_is_answered_success_at_once_and_handled_once(bot: TestBot) -> None:
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运")
    with official_account(bot) as (fake, url):
        wang = Resident(url, fake, "oWangFang")
        wang.says(f"加入 {code_of(bot, '王芳')}")
        same = next(_ids)
        first = wang.send("text", msg_id=same, Content="评论 1 电梯周末也停")
        again = wang.send("text", msg_id=same, Content="评论 1 电梯周末也停")
        assert first[0] == again[0] == 200 and "评论 C1" in first[1] and again[1] == ""
    with bot.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Comment)) == 1


def test_a_slow_answer_goes_as_customer_service_messages_and_a_secret_choice_is_never_stored(
    bot: TestBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    discussing(bot)
    open_vote(bot, "1", "3d", "2", "1", "1")  # a secret vote
    monkeypatch.setattr(callback_module, "BUDGET", 0.0)  # every answer is too late for WeChat
    with official_account(bot) as (fake, url):
        wang = Resident(url, fake, "oWangFang")
        assert wang.says(f"加入 {code_of(bot, '王芳')}") == ""  # success: the answer comes later
        wait_for(lambda: fake.texts_to("oWangFang"), "the late welcome")
        assert wang.send("text", Content="投票 1 2") == (200, "")
        wait_for(lambda: len(fake.texts_to("oWangFang")) == 2, "the late reply to the ballot")
        assert (
            fake.texts_to("oWangFang")[1]
            == "您的不记名票已投出。为保密，此处不重复您的选择：它要先存下才能发送。"
        )
    with bot.db.transaction() as session:
        stored = " ".join(str(p) for p in session.scalars(select(Outbox.params)))
        assert "欢迎" in stored and "反对" not in stored
        assert session.scalar(select(func.count()).select_from(Participation)) == 1


def test_what_the_window_does_not_allow_is_held_until_the_resident_writes_again(bot: TestBot) -> None:
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运")
    with official_account(bot) as (fake, url):
        ou = Resident(url, fake, "oYangMing")
        ou.says(f"加入 {code_of(bot, '欧阳明')}")
        with bot.db.transaction() as session:  # WeChat is his only channel (not the console he raised it in)
            session.execute(
                Account.__table__.update().where(Account.channel == "console").values(person_id=None)
            )
        sender = _sender(bot, fake)
        for n in range(7):  # comments on his issue, each notified to him at once
            bot.say(f"/comment 1 第{n}条意见", as_="王芳")
            bot.app.deliver({"wechat": sender})
        assert len(fake.texts_to("oYangMing")) == 5 and not fake.refused  # the window's five
        with bot.db.transaction() as session:
            assert session.scalar(select(func.count()).where(Outbox.held_at.is_not(None))) == 2
        ou.says("议题")  # he writes: a new window, and what was held goes, merged into one
        bot.app.deliver({"wechat": sender})
        last = fake.texts_to("oYangMing")[-1]
        assert "第5条意见" in last and "第6条意见" in last and len(fake.texts_to("oYangMing")) == 6
        fake.windows["oYangMing"].left = 0  # WeChat counts otherwise (another tool wrote to him)
        bot.say("/comment 1 第7条意见", as_="王芳")
        bot.app.deliver({"wechat": sender})
        assert fake.refused == [("oYangMing", 45047)]
        bot.app.deliver({"wechat": sender})  # held, not tried again and again
        assert fake.refused == [("oYangMing", 45047)]
        ou.says("议题")
        bot.app.deliver({"wechat": sender})
        assert "第7条意见" in fake.texts_to("oYangMing")[-1]


def _sender(bot: TestBot, fake: FakeWeChat):  # type: ignore[no-untyped-def]
    from bot.channels.wechat import WeChatChannel
    from bot.channels.wechat.client import Client

    return WeChatChannel(Client(config_for(bot, fake), bot.db, bot.clock))


def test_a_refused_token_is_fetched_anew_once_and_shared(bot: TestBot) -> None:
    with running(FakeWeChat()) as fake:
        one, two = _sender(bot, fake), _sender(bot, fake)
        fake.interacted("oA", "message")
        one.client.message.send_text("oA", "一")
        two.client.message.send_text("oA", "二")  # another process: the same token, from the database
        assert fake.fetches == 1
        fake.revoke()  # WeChat answers 40001: a new token, and the call made again
        two.client.message.send_text("oA", "三")
        one.client.message.send_text("oA", "四")  # the other process finds the new one in the database
        assert fake.fetches == 2 and fake.texts_to("oA") == ["一", "二", "三", "四"]
    with bot.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(PlatformToken)) == 1


def test_bad_signatures_stale_timestamps_and_broken_xml_are_refused_unread(
    bot: TestBot, caplog: pytest.LogCaptureFixture
) -> None:
    with official_account(bot) as (_, url):
        body = xml("oX", "text", int(time.time()), 1, Content="秘密内容")
        query, data = signed(body)
        assert post(url, query | {"signature": "0" * 40}, data)[0] == 403
        stale, data = signed(body, at=time.time() - 600)
        assert post(url, stale, data)[0] == 403
        query, _ = signed(body)
        assert post(url, query, b"<xml><ToUserName>")[0] == 403
        assert post(url, query, b"<xml>" + b"x" * 70_000 + b"</xml>")[0] == 403
        query, _ = signed("")
        assert post(url, query | {"echostr": "e"}, b"")[0] == 403  # no message in it
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        query, _ = signed("")
        with opener.open(f"{url}/wechat?{urlencode(query | {'echostr': 'hello-1'})}", timeout=10) as answer:
            assert answer.read() == b"hello-1"  # the server address verified
    assert "秘密内容" not in caplog.text
    with bot.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Account)) == 0


def test_in_safe_mode_messages_and_answers_are_encrypted(bot: TestBot) -> None:
    with official_account(bot, safe=True) as (fake, url):
        ou = Resident(url, fake, "oYangMing", safe=True)
        assert "欢迎，欧阳明" in ou.says(f"加入 {code_of(bot, '欧阳明')}")
        query, data = signed(xml("oYangMing", "text", int(time.time()), 5, Content="议题"))
        assert post(url, query, data)[0] == 403  # plain, where the console set safe mode


def test_the_menu_is_installed_and_its_clicks_run_commands(bot: TestBot) -> None:
    from bot.cli import main

    with official_account(bot) as (fake, url):
        ou = Resident(url, fake, "oYangMing")
        ou.says(f"加入 {code_of(bot, '欧阳明')}")
        assert "请输入议题标题" in ou.send("event", Event="CLICK", EventKey="raise")[1]
        assert "取消" in ou.says("取消")
        assert "您的身份" in ou.send("event", Event="CLICK", EventKey="my")[1]
        environ = {
            "WECHAT_APP_ID": APP_ID,
            "WECHAT_APP_SECRET": APP_SECRET,
            "WECHAT_API_URL": fake.api_url,
        }
        with pytest.MonkeyPatch.context() as patch:
            for k, v in environ.items():
                patch.setenv(k, v)
            assert main(["wechat", "menu", "--db", bot.db.url]) == 0
        assert [b["key"] for b in fake.menus[0]["button"]] == ["raise", "issues", "my"]


@contextmanager
def worker(db: Database, fake: FakeWeChat) -> Iterator[str]:
    """A `yishi serve` process for the Official Account; its URL once it answers. What it logs goes
    to a file (a pipe nobody reads would fill up under load and stop it)."""
    port = free_port()
    env = dict(
        os.environ, DATABASE_URL=db.url, YISHI_BALLOT_KEY=BALLOT_KEY, WECHAT_TOKEN=TOKEN, WECHAT_APP_ID=APP_ID,
        WECHAT_APP_SECRET=APP_SECRET, WECHAT_API_URL=fake.api_url,
    )  # fmt: skip
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            [YISHI, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=log, text=True,
        )  # fmt: skip
        try:
            wait_for(lambda: process.poll() is not None or _answers(port), "yishi serve to start", 30)
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"yishi serve stopped: {log.read()[-2000:]}")
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(30)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_a_retry_at_another_worker_while_the_first_is_handled_is_answered_at_once(pg_bot: TestBot) -> None:  # noqa: F811
    db = pg_bot.db
    pg_bot.say("/as 欧阳明")
    pg_bot.raise_issue("1栋电梯经常停运")
    with running(FakeWeChat()) as fake, worker(db, fake) as one, worker(db, fake) as two:
        wang = Resident(one, fake, "oWangFang")
        wang.says(f"加入 {code_of(pg_bot, '王芳')}")
        same = next(_ids)
        query, body = signed(xml("oWangFang", "text", int(time.time()), same, Content="评论 1 周末也停"))
        with db.engine.connect() as held, ThreadPoolExecutor(1) as pool:
            with held.begin():  # her account's row held: the first worker's handling waits for it
                held.execute(text("SELECT id FROM accounts WHERE external_id = 'oWangFang' FOR UPDATE"))
                first = pool.submit(post, one, query, body)
                wait_for(lambda: _claimed(db, str(same)), "the first worker's claim")
                started = time.monotonic()
                assert post(two, query, body) == (200, b"success")  # WeChat's retry, at the other worker
                assert time.monotonic() - started < 1.0  # at once, while the first is still at it
                assert not first.done()
            status, answer = first.result(timeout=30)
        assert status == 200 and "评论 C1" in read_reply(answer)
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Comment)) == 1


def _claimed(db: Database, key: str) -> bool:
    with db.transaction() as session:
        found = session.execute(
            select(HandledUpdate.key).where(HandledUpdate.channel == "wechat", HandledUpdate.key == key)
        ).first()
        return found is not None


def test_one_person_on_telegram_and_wechat_votes_once(
    bot: TestBot, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    def telegram(text: str) -> str:
        return "\n".join(
            r.text for r in bot.app.dispatcher.handle(Incoming("telegram", "7001", "7001", text=text))
        )

    discussing(bot)
    open_vote(bot, "1", "3d", "1", "1", "1")  # open, per household
    assert "欢迎，王芳" in telegram(f"/join {code_of(bot, '王芳')}")
    code = telegram("/link").split("关联码是 ")[1].split("。")[0]
    with official_account(bot) as (fake, url):
        wang = Resident(url, fake, "oWangFang")
        assert "欢迎，王芳" in wang.says(f"加入 {code}")
        assert "已被使用" in Resident(url, fake, "oSomeoneElse").says(f"加入 {code}")  # used once
        assert "Telegram, 微信" in wang.says("我的")
        assert "投票已记录：同意" in telegram("/vote 1 1")
        assert "投票已更改为：反对" in wang.says(
            "投票 1 2"
        )  # the same ballot, changed from the other channel
        with bot.db.transaction() as session:
            assert session.scalars(select(Ballot.choices)).all() == [[2]]
        assert main(["invites", "--reissue", "王芳", "--db", bot.db.url]) == 0
        assert main(["accounts", "unbind", "王芳", "--db", bot.db.url]) == 0
        out = capsys.readouterr().out
        assert "新的邀请码" in out and "telegram, wechat" in out
        assert "尚未绑定居民名册" in wang.says("我的")  # a lost phone no longer speaks for her
