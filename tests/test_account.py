"""Who am I to the bot: /start, /join, /lang, /help, /my, /cancel, in both languages."""

from __future__ import annotations

from sqlalchemy import select

from flows import settings
from flows.messages import Incoming
from handlers.dispatch import Dispatcher
from storage.models import Account, Invite, Person
from tests.harness import TestBot, ballot_key


def code_of(bot: TestBot, name: str) -> str:
    with bot.db.transaction() as session:
        return session.scalar(
            select(Invite.code).join(Person).where(Person.name == name, Invite.used_at.is_(None))
        )


def test_join_with_an_invite_code_in_chinese(bot: TestBot) -> None:
    code = code_of(bot, "欧阳明")
    bot.verify_dialog(
        [
            ("/start", "/join"),
            ("/issues", "居民名册"),
            ("/join", "/join CODE"),
            ("/join NOPE1234", "邀请码 NOPE1234 无效"),
            (f"加入 {code.lower()}", ["欧阳明@1栋-101", "梧桐社区", "/raise"]),
            ("/join " + code_of(bot, "王芳"), "已"),
        ]
    )
    other = bot.app.dispatcher.handle(Incoming("telegram", "42", "42", text=f"/join {code}"))
    assert other[0].text == f"邀请码 {code} 已被使用。"
    with bot.db.transaction() as session:
        bound = session.scalars(select(Account.person_id).where(Account.person_id.is_not(None))).all()
    assert len(bound) == 1


def test_join_in_english_and_help_lists_what_the_person_may_use(bot_en: TestBot) -> None:
    bot_en.verify_dialog(
        [
            ("/help", ["/start", "/join CODE", "/lang"]),
            (
                "/join " + code_of(bot_en, "孙丽华"),
                ["Welcome, 孙丽华@1栋-105. You are now connected to 梧桐社区.", "/escalate N"],
            ),
            ("/start", "Welcome back, 孙丽华."),
        ]
    )
    help_text = bot_en.say("/help")
    assert "/raise" in help_text and "/escalate" in help_text
    assert "/review" not in help_text and "/merge" not in help_text and "/join" not in help_text
    committee = bot_en.say("/help", as_="周书记")
    assert "/review" in committee and "/merge" in committee and "/refer" in committee
    assert "/raise" not in committee and "/support" not in committee  # no home: no vote, no support
    staff = bot_en.say("/help", as_="吴师傅")
    assert "/issues" in staff and "/raise" not in staff and "/escalate" not in staff


def test_lang_switches_the_persons_replies(bot: TestBot) -> None:
    bot.verify_dialog(
        [
            ("/as 欧阳明", "当前身份"),
            ("/lang en", "I will answer you in English."),
            ("/issues", "There are no open issues in your scopes."),
            ("/lang fr", "Usage: /lang zh | /lang en"),
            ("语言 中文", "我将用中文回复您。"),
            ("/issues", "暂无"),
        ]
    )


def test_my_lists_raised_and_supported(bot_en: TestBot) -> None:
    bot_en.say("/as 欧阳明")
    bot_en.raise_issue("1栋电梯经常停运", "停了三次。")
    bot_en.say("/as 王芳")
    bot_en.raise_issue("1栋楼道堆物", "楼道里堆了很多杂物。")
    bot_en.say("/support 1")
    mine = bot_en.say("/my")
    assert "You are 王芳@1栋-103." in mine
    assert "Issues you raised:\n#2 1栋楼道堆物" in mine and "Issues you support:\n#1 1栋电梯经常停运" in mine


def test_cancel_unknown_and_plain_text(bot_en: TestBot) -> None:
    bot_en.verify_dialog(
        [
            ("/cancel", "There is nothing to cancel."),
            ("/frobnicate", "Unknown command /frobnicate."),
            ("hello there", "I did not understand that. Send /help"),
        ]
    )


def test_group_chats_see_slash_commands_only(community) -> None:  # type: ignore[no-untyped-def]
    from flows.clock import FixedClock
    from tests.conftest import START

    dispatcher = Dispatcher(community, FixedClock(START), ballot_key())
    assert dispatcher.handle(Incoming("telegram", "7", "-100", text="附议 1", is_group=True)) == []
    assert dispatcher.handle(Incoming("telegram", "7", "-100", text="just chatting", is_group=True)) == []
    replies = dispatcher.handle(Incoming("telegram", "7", "-100", text="/help@yishi_bot", is_group=True))
    assert "/help" in replies[0].text and "/join" not in replies[0].text  # joining is done in private
    joined = dispatcher.handle(Incoming("telegram", "7", "-100", text="/join ABCD", is_group=True))
    assert "本群尚未绑定范围" in joined[0].text  # a group not bound answers only what binds it


def test_first_contact_tells_what_is_kept_and_the_committee_may_reword_it(bot: TestBot) -> None:
    code = code_of(bot, "欧阳明")
    bot.verify_dialog(
        [
            ("/start", ["/join", "议事保存的信息及用途", "无记名投票只记录您参加了"]),
            (f"/start join_{code}", ["欢迎", "议事保存的信息及用途"]),  # a deep link binds too
            ("/privacy", "议事保存的信息及用途"),
            ("隐私", "从不记录您的选择"),
        ]
    )
    with bot.db.transaction() as session:
        settings.put(session, 1, "privacy_notice", "本社区只保存名册和您写下的内容。")
    assert bot.say("/privacy") == "本社区只保存名册和您写下的内容。"


def test_first_contact_in_english(bot_en: TestBot) -> None:
    assert "What Yishi keeps about you, and why" in bot_en.say("/start")
    assert "never your choice" in bot_en.say("/privacy")
    assert "This link is not valid" in bot_en.say("/start vote_x")
