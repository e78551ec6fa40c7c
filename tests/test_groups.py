"""Group mode, as transcripts through the console speaking in a group chat: binding a group to a
scope, what it hears, a vote by buttons in it, and what is never done there."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import func, select

from flows import settings
from flows.messages import Incoming
from flows.outbox import DeliveryFailed
from storage.models import Ballot, DialogState, Group, Issue, Outbox, Participation
from tests.harness import TestBot
from tests.test_decide import discussing, open_vote
from tests.test_outbox import Channel

GROUP = "GROUP 梧桐社区/东片区/东一网格/1栋"


def bound(bot: TestBot, leader: str = "孙丽华", chat: str = "1栋群") -> None:
    """The group `chat` bound by 1栋's leader, who then speaks in the private chat again."""
    bot.in_group(chat, as_=leader)
    bot.say("/linkgroup")
    bot.in_group("")
    with bot.db.transaction() as session:
        assert session.scalar(select(Group.chat_id).where(Group.unbound_at.is_(None))) == chat


def test_a_building_group_bound_by_its_leader_hears_its_issues_and_votes_by_button(bot: TestBot) -> None:
    bot.in_group("1栋群", as_="孙丽华")
    bot.verify_dialog(
        [
            ("/raise", "本群尚未绑定范围"),  # not bound yet: only /linkgroup and /help
            ("/linkgroup", "本群已绑定到 梧桐社区/东片区/东一网格/1栋"),
            ("/linkgroup", "本群已绑定到 梧桐社区/东片区/东一网格/1栋，请先 /unlinkgroup。"),
            ("/raise", ["请在与我的私聊中继续：/raise", "(→ /start raise)"]),
            ("/my", "(→ /start my)"),
            ("楼道灯坏了", ""),  # chatter in a group is not the bot's
        ]
    )
    bot.in_group("")
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运")
    bot.say("/support 1", as_="李伟@1栋-102")
    assert f"[→ {GROUP}] 议题 #1 1栋电梯经常停运（1栋）已获 3 户附议，进入讨论。" in bot.say(
        "/support 1", as_="王芳"
    )
    opened = open_vote(bot, "1", "3d", "1", "1", "1")
    assert f"[→ {GROUP}] 议题 #1 1栋电梯经常停运 开始表决" in opened
    assert "[1] 同意\n[2] 反对\n[3] 弃权" in opened  # a button per choice
    bot.in_group("1栋群")
    bot.verify_dialog(
        [
            ("/as 王芳", "当前身份"),
            ("/press 1", "[! 您在议题 #1 的投票已记录：同意。]"),
            ("/press 1", "[! 您在议题 #1 的这一票早已记录：同意。]"),  # the same again: nothing changes
            ("/press 2", "[! 您在议题 #1 的投票已记录：反对。]"),  # another: the ballot changes
            ("/as 陈静", "当前身份"),  # 2栋: not eligible in 1栋's vote
            ("/press 1", "[! 陈静 在议题 #1 的表决中没有投票权。]"),
            ("/as", "本控制台自己的账号"),
            ("/press 1", "[! 您的账号尚未绑定居民名册。"),
        ]
    )
    with bot.db.transaction() as session:
        assert session.scalars(select(Ballot.choices)).all() == [[2]]
    edited = bot.say("/clock +2m")  # the vote message shows the turnout and counts, kept current
    assert f"[✎ {GROUP}]" in edited and "参与：1/6" in edited and "[2] 反对 — 1" in edited
    bot.advance(timedelta(seconds=10))
    bot.press(1, as_="李伟@1栋-102")
    assert "[✎" not in bot.say("/issues")  # not again within the minute
    closed = bot.say("/closevote 1", as_="孙丽华")
    assert f"[→ {GROUP}] 议题 #1 1栋电梯经常停运 的表决已结束" in closed


def test_in_english_a_group_points_to_the_private_chat_and_never_takes_a_secret_ballot(
    bot_en: TestBot,
) -> None:
    bot = bot_en
    bound(bot)
    discussing(bot)
    open_vote(bot, "1", "3d", "2", "1", "1")  # secret
    bot.in_group("1栋群")
    bot.verify_dialog(
        [
            ("/as 王芳", "Now speaking as"),
            (
                "/vote 1 1",
                [
                    "A secret ballot is cast in your private chat with me, never in a group.",
                    "(→ /start vote_1)",
                ],
            ),
            ("/openvote 1", "(→ /start openvote_1)"),
        ]
    )
    with bot.db.transaction() as session:
        assert session.scalar(select(func.count(Participation.id))) == 0
    bot.in_group("")
    ballot = bot.say("/start vote_1")  # the pointer opens the ballot in the private chat
    assert "[1] ☐ agree" in ballot
    assert "[1] ☑ agree" in bot.press(1)
    cast = bot.press(4)  # "Cast this secret ballot (final)"
    assert "Your secret ballot on issue #1 is cast: agree. It cannot be changed." in cast
    with bot.db.transaction() as session:
        assert session.scalar(select(func.count(Participation.id))) == 1
        assert (
            session.scalar(select(func.count()).select_from(DialogState)) == 0
        )  # the pick lived in the buttons


def test_an_old_keyboard_or_a_forged_button_answers_nothing(bot_en: TestBot) -> None:
    bot = bot_en
    bot.say("/as 欧阳明")
    bot.say("/raise")
    bot.say("1栋电梯经常停运")
    scopes = bot.say("详情。")  # the scope step, with its buttons
    assert "[1] This building (1栋)" in scopes
    bot.say("/cancel")
    bot.say("/raise")
    assert "This button is no longer valid." in bot.press(1)  # the old dialog's button
    account = bot.console.account_id
    for forged in ("d:raise.zzzz:title:x", "v:999:1", "v:1:s7:c", "anything"):  # no token is zzzz
        replies = bot.app.dispatcher.handle(Incoming("console", account, "console", payload=forged))
        assert [(r.text, r.alert) for r in replies] == [("This button is no longer valid.", True)], forged
    assert "Please describe" in bot.say("楼道灯坏了")  # the dialog is still at its title step
    with bot.db.transaction() as session:
        assert session.scalar(select(func.count(Issue.id))) == 0


def test_a_repeated_update_is_handled_once(bot_en: TestBot) -> None:
    bot = bot_en
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运")
    bot.say("/as 王芳")
    support = Incoming("console", bot.console.account_id, "console", text="/support 1", update_key="upd-7")
    assert "You support issue #1" in bot.app.dispatcher.handle(support)[0].text
    before = bot.snapshot()
    assert bot.app.dispatcher.handle(support) == []  # a retried webhook: ignored
    assert bot.snapshot() == before


def test_groups_are_bound_by_those_responsible(bot_en: TestBot) -> None:
    bot = bot_en
    cases = [
        ("王芳", "", "Only building leaders, grid workers and committee members can do this."),
        ("马建国", "梧桐社区/东片区/东一网格/1栋", "You cannot bind a group to 梧桐社区/东片区/东一网格/1栋"),
        ("林晓东", "梧桐社区/西片区/西一网格", "You cannot bind a group to 梧桐社区/西片区/西一网格"),
        ("林晓东", "", "This group is now bound to 梧桐社区/东片区/东一网格:"),
    ]
    for n, (who, scope, expected) in enumerate(cases):
        bot.in_group(f"群{n}", as_=who)
        assert expected in bot.say(f"/linkgroup {scope}".strip())
    bot.in_group("群9", as_="周书记")
    assert "bound to 梧桐社区/东片区/东一网格/1栋" in bot.say("/linkgroup 1栋")
    bot.in_group("群10")
    assert "梧桐社区/东片区/东一网格/1栋 already has a group here" in bot.say("/linkgroup 1栋")
    assert "This group is not bound to a scope" in bot.say("/unlinkgroup")
    bot.in_group("群9", as_="王芳")
    assert "Only building leaders" in bot.say("/unlinkgroup")
    bot.in_group("群9", as_="孙丽华")  # 1栋's leader may undo a binding of 1栋
    assert "This group is no longer bound to 梧桐社区/东片区/东一网格/1栋." in bot.say("/unlinkgroup")
    with bot.db.transaction() as session:
        assert session.scalar(select(func.count(Group.id)).where(Group.unbound_at.is_(None))) == 1


def test_a_group_does_not_advance_a_dialog(bot_en: TestBot) -> None:
    bot = bot_en
    bound(bot)
    bot.say("/as 欧阳明")
    bot.say("/raise")
    bot.in_group("1栋群")
    assert bot.say("1栋电梯经常停运") == ""  # not the title: a group never answers a dialog step
    bot.in_group("")
    assert "Please describe" in bot.say("1栋电梯经常停运")


def test_the_vote_message_is_edited_at_most_once_a_minute_and_once_after_the_close(bot_en: TestBot) -> None:
    bot = bot_en
    bound(bot)
    discussing(bot)
    open_vote(bot, "1", "3d", "1", "1", "1")
    bot.in_group("1栋群")
    edits = []
    for who in ("欧阳明", "李伟@1栋-102", "王芳"):  # a ballot every 20 seconds
        bot.press(1, as_=who)
        bot.advance(timedelta(seconds=20))
        edits.append(bot.say("/issues"))
    shown = "\n".join(edits)
    assert shown.count("[✎") == 1 and "Turnout: 3 of 6" in shown  # one edit in the minute
    bot.advance(timedelta(seconds=30))
    closed = bot.say("/closevote 1", as_="孙丽华")
    assert closed.count("[✎") == 1 and "closed" in closed.split("[✎")[1]  # the final edit, no buttons


def test_multiple_choice_by_buttons_open_in_a_group_and_secret_in_private(bot_en: TestBot) -> None:
    bot = bot_en
    bound(bot)
    discussing(bot)
    open_vote(bot, "3", "东门;西门;南门", "2", "3d", "1", "2", "1")  # open, at most 2, per person
    bot.in_group("1栋群")
    bot.verify_dialog(
        [
            ("/as 王芳", "Now speaking as"),
            ("/press 1", "[! Your ballot on issue #1 is recorded: 东门.]"),
            ("/press 3", "[! Your ballot on issue #1 is recorded: 东门, 南门.]"),  # added
            ("/press 2", "[! You may choose at most 2 here.]"),
            ("/press 1", "[! Your ballot on issue #1 is recorded: 南门.]"),  # taken out again
            ("/press 3", "[! Your ballot on issue #1 is already recorded: 南门.]"),  # the last stays
            ("/vote 1 2 3", "Your ballot on issue #1 is changed: 西门, 南门."),
        ]
    )
    bot.say("/closevote 1", as_="孙丽华")
    bot.in_group("")
    bot.say("/openvote 1", as_="孙丽华")  # a second vote, secret: the picks travel in the buttons
    for line in ("3", "东门;西门;南门", "2", "3d", "2", "2", "1"):
        bot.say(line)
    ballot = bot.say("/vote 1", as_="张强")
    assert "[1] ☐ 东门\n[2] ☐ 西门\n[3] ☐ 南门" in ballot and "Cast" not in ballot
    assert "[1] ☑ 东门" in bot.press(1)
    picked = bot.press(3)
    assert "[3] ☑ 南门" in picked and "[4] Cast this secret ballot (final)" in picked
    assert "You may choose at most 2 here." in bot.press(2)
    assert "[1] ☐ 东门" in bot.press(1)  # unpicked
    assert "Your secret ballot on issue #1 is cast: 南门." in bot.press(4)
    with bot.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(DialogState)) == 0


def test_the_channel_may_refuse_a_binding_by_someone_not_an_admin_of_the_group(bot_en: TestBot) -> None:
    bot = bot_en
    bot.say("/as 孙丽华")
    account = bot.console.account_id
    refused = bot.app.dispatcher.handle(
        Incoming("console", account, "1栋群", text="/linkgroup", is_group=True, group_admin=False)
    )
    assert refused[0].text == "Only an admin of this group can bind it."
    with bot.db.transaction() as session:
        assert session.scalar(select(func.count(Group.id))) == 0


def test_a_bound_group_reads_the_weekly_digest_of_its_scope(bot: TestBot) -> None:
    bound(bot)
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运")
    monday = bot.say("/clock +6d")  # START is Tuesday 1 December, 10:00 in Shanghai
    assert f"[→ {GROUP}] 您所在范围的议事摘要" in monday  # besides 孙丽华's own, as a leader
    assert "#1 1栋电梯经常停运" in monday.split(f"[→ {GROUP}]")[1] and "本社区议事记录链现为第" in monday


def test_a_deep_link_or_an_invite_code_sent_in_a_group_is_sent_back_to_the_private_chat(
    bot_en: TestBot,
) -> None:
    bot = bot_en
    bound(bot)
    bot.in_group("1栋群", as_="欧阳明")
    for start in ("/start my", "/start raise", "/start vote_1"):
        reply = bot.say(start)
        assert "Please continue in your private chat with me" in reply and "You are" not in reply, start
    code = "ABCD2345"
    joined = bot.say(f"/join {code}")
    assert "An invite code is yours alone" in joined and code not in joined  # no link that binds to it
    with bot.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(DialogState)) == 0


def test_a_ballot_typed_in_a_group_is_confirmed_to_the_voter_only(bot_en: TestBot) -> None:
    bot = bot_en
    bound(bot)
    discussing(bot)
    open_vote(bot, "1", "3d", "1", "1", "1")
    bot.say("/as 王芳")
    typed = Incoming("console", bot.console.account_id, "1栋群", text="/vote 1 1", is_group=True)
    [reply] = bot.app.dispatcher.handle(typed)
    assert reply.private and "recorded: agree" in reply.text


def test_a_group_the_bot_was_removed_from_holds_its_messages_until_the_bot_is_back(bot_en: TestBot) -> None:
    bot = bot_en
    bound(bot)
    with bot.db.transaction() as session:
        group = session.scalar(select(Group))
        assert group is not None
        group.channel = "flaky"  # a channel whose groups can remove the bot
    kicked = Channel(
        lambda text: DeliveryFailed("Forbidden: bot was kicked from the group chat", blocked=True)
    )
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运")
    bot.say("/support 1", as_="李伟@1栋-102")
    bot.say("/support 1", as_="王芳")  # the group is told the issue is in discussion
    for _ in range(3):
        bot.app.deliver({"flaky": kicked})
    assert len(kicked.received) == 0
    with bot.db.transaction() as session:
        row = session.scalar(select(Outbox).where(Outbox.group_id.is_not(None)))
        assert row is not None and row.held_at is not None and row.failed_at is None and row.attempts == 0
        assert session.scalar(select(Group.blocked_at)) is not None
    # the bot is added back: it hears from the group, and what was held goes out
    bot.app.dispatcher.handle(Incoming("flaky", "孙丽华", "1栋群", text="/help", is_group=True))
    back = Channel()
    assert bot.app.deliver({"flaky": back}).sent == 1 and "now open for discussion" in back.received[0]


def test_a_groups_messages_link_to_the_public_board_where_it_is_served(bot: TestBot) -> None:
    bot.app.config = replace(bot.app.config, public_url="https://yishi.example.org")
    bound(bot)
    board = "https://yishi.example.org/c/1"  # the community's number, while it has no slug
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运")
    bot.say("/support 1", as_="李伟@1栋-102")
    told = bot.say("/support 1", as_="王芳")
    assert (
        f"进入讨论。/issue 1\n{board}/issues/1\n[→ 欧阳明]" in told
    )  # the group's message links to the issue
    assert "/issues/1" not in told.split(f"[→ {GROUP}]")[0]  # the resident's answer does not
    with bot.db.transaction() as session:  # the community's own address, once it has one
        settings.put(session, 1, "slug", "wutong")
    told = open_vote(bot, "1", "3d", "1", "1", "1")  # the group hears of the vote
    assert "https://yishi.example.org/c/wutong/issues/1" in told.split(f"[→ {GROUP}]")[1]
