"""The raise dialog as transcripts, in both languages: title → details → scope → confirm."""

from __future__ import annotations

from sqlalchemy import select

from flows.issues import PHOTO_MAX
from flows.messages import Incoming
from storage.models import DialogState, Issue, IssuePhoto, Support
from tests.fake_telegram import jpeg
from tests.harness import TestBot

LIFT = "1栋电梯经常停运"
LIFT_DETAILS = "这个月已经停了三次,老人上下楼很困难。"


def test_raise_in_chinese(bot: TestBot) -> None:
    bot.verify_dialog(
        [
            ("/as 欧阳明", "当前身份:欧阳明(1栋101)"),
            ("/raise", "请输入议题标题:"),
            (LIFT, "请描述具体情况:"),
            (
                LIFT_DETAILS,
                [
                    "选择范围:",
                    "[1] 本楼(1栋)",
                    "[2] 本网格(东一网格)",
                    "[3] 本片区(东片区)",
                    "[4] 全社区(梧桐社区)",
                ],
            ),
            ("1", ["确认发布?", "[1] 发布"]),
            ("是", "已发布议题 #1,还需 2 户附议进入讨论。"),
        ]
    )
    issue = bot.issue(1)
    assert (issue.title, issue.details, issue.status) == (LIFT, LIFT_DETAILS, "raised")
    assert bot.count(Support) == 1  # the author is the first supporter
    assert bot.count(DialogState) == 0


def test_raise_in_english(bot_en: TestBot) -> None:
    bot_en.verify_dialog(
        [
            ("/as 欧阳明", "Now speaking as 欧阳明 (1栋101)."),
            ("/raise", "Please enter the title of the issue:"),
            ("Lift in building 1 keeps stopping", "Please describe the situation:"),
            (
                "Three times this month.",
                ["Choose the scope:", "[1] This building (1栋)", "[4] The whole community (梧桐社区)"],
            ),
            ("2", ["Publish this issue?", "[1] Publish"]),
            ("1", "Published issue #1; 2 more households must support it before discussion."),
        ]
    )
    assert bot_en.issue(1).scope.name == "东一网格"


def test_similar_issue_offered_and_supported_instead(bot: TestBot) -> None:
    bot.say("/as 李伟@1栋-102")
    bot.raise_issue("1栋电梯又坏了", "电梯停运,老人出行不便")
    bot.verify_dialog(
        [
            ("/as 欧阳明", "欧阳明"),
            ("/raise", "请输入议题标题:"),
            (LIFT, "请描述具体情况:"),
            (LIFT_DETAILS, "选择范围:"),
            ("1", ["[1] 发布", "[2] 附议 #1 1栋电梯又坏了"]),
            ("2", "#1"),
        ]
    )
    with bot.db.transaction() as session:
        assert session.scalar(select(Issue.id).where(Issue.title == LIFT)) is None
        supporters = set(session.scalars(select(Support.person_id).where(Support.issue_id == 1)))
    assert len(supporters) == 2


def test_similar_issue_not_offered_from_another_building(bot: TestBot) -> None:
    bot.say("/as 陈静")
    bot.raise_issue("2栋电梯又坏了", "电梯停运")
    bot.say("/as 欧阳明")
    for line in ("/raise", LIFT, LIFT_DETAILS):
        bot.say(line)
    reply = bot.say("1")
    assert "附议 #1" not in reply and "[1] 发布" in reply


def test_bad_answers_repeat_the_step_and_keep_the_dialog(bot: TestBot) -> None:
    bot.verify_dialog(
        [
            ("/as 欧阳明", "欧阳明"),
            ("/raise", "请输入议题标题:"),
            ("\u200b \u200f", ["标题", "请输入议题标题:"]),  # only invisible characters
            ("长" * 101, ["101", "请输入议题标题:"]),
            (LIFT, "请描述具体情况:"),
            ("细" * 2001, ["2001", "请描述具体情况:"]),
            (LIFT_DETAILS, "选择范围:"),
            ("9", ["1–4", "选择范围:"]),
            ("本", ["1–4", "选择范围:"]),  # the start of several labels
            ("１", "确认发布?"),  # a full-width digit works
            ("也许", "确认发布?"),
            ("no", "未发布"),
        ]
    )
    assert bot.count(Issue) == 0 and bot.count(DialogState) == 0


def test_cancel_at_every_step(bot: TestBot) -> None:
    answers = ["/raise", LIFT, LIFT_DETAILS, "1"]
    for step in range(1, 5):
        bot.say("/as 欧阳明")
        for line in answers[:step]:
            bot.say(line)
        assert bot.count(DialogState) == 1
        reply = bot.say("/cancel" if step % 2 else "取消")
        assert "已取消" in reply
        assert bot.count(DialogState) == 0 and bot.count(Issue) == 0


def test_a_command_inside_the_dialog_cancels_it_and_runs(bot: TestBot) -> None:
    bot.say("/as 欧阳明")
    bot.say("/raise")
    reply = bot.say("/issues")
    assert "已取消" in reply and "暂无" in reply
    assert bot.count(DialogState) == 0


def test_a_keyword_inside_the_dialog_is_an_answer(bot: TestBot) -> None:
    bot.say("/as 欧阳明")
    bot.say("/raise")
    assert "请描述具体情况" in bot.say("附议 1")  # a title that starts like a keyword


def test_dialogs_are_per_person_and_survive_a_restart(bot: TestBot) -> None:
    bot.say("/as 欧阳明")
    bot.say("/raise")
    bot.say(LIFT)
    bot.say("/as 李伟@1栋-102")
    assert "请描述" not in bot.say("/issues")
    restarted = TestBot(bot.db, bot.clock.now())
    restarted.say("/as 欧阳明")
    assert "选择范围" in restarted.say(LIFT_DETAILS)


def test_only_residents_raise(bot: TestBot) -> None:
    for who in ("周书记", "吴师傅", "林晓东"):
        assert "仅在居民名册中登记了住址的居民" in bot.say("/raise", as_=who)
    assert bot.count(DialogState) == 0


def test_a_refused_command_inside_the_dialog_still_leaves_it(bot_en: TestBot) -> None:
    bot_en.say("/as 欧阳明")
    bot_en.say("/raise")
    reply = bot_en.say("/support 99")
    assert reply == "(The previous dialog was cancelled.)\nThere is no issue #99."
    assert bot_en.count(DialogState) == 0
    assert "I did not understand" in bot_en.say(LIFT)  # no longer an answer to the title step


def test_a_vote_keyword_inside_the_dialog_leaves_it_and_is_never_stored(bot_en: TestBot) -> None:
    bot_en.say("/as 欧阳明")
    bot_en.say("/raise")
    reply = bot_en.say("投票 1 2")
    assert reply.startswith("(The previous dialog was cancelled.)") and "There is no issue #1." in reply
    assert bot_en.count(DialogState) == 0


def test_ones_own_issue_is_not_offered_as_a_similar_one(bot: TestBot) -> None:
    bot.say("/as 李伟@1栋-102")
    bot.raise_issue("1栋电梯又坏了", "电梯停运,老人出行不便")
    for line in ("/raise", LIFT, LIFT_DETAILS):
        bot.say(line)
    assert "附议 #1" not in bot.say("1")


def test_a_photo_at_the_details_step_is_kept_with_the_issue_and_shown_with_it(bot_en: TestBot) -> None:
    bot = bot_en
    bot.say("/as 欧阳明")
    bot.say("/raise")

    def send(photo: bytes, caption: str = "") -> str:
        incoming = bot.console.incoming(text=caption)
        replies = bot.app.dispatcher.handle(Incoming(**{**incoming.__dict__, "photo": photo}))
        return "\n".join(r.text for r in replies)

    before = bot.snapshot()
    at_title = send(jpeg(640, 480), LIFT)  # a photo at the title step: not taken, nor its caption
    assert at_title.startswith("I keep a photo only while an issue is raised, at its details step")
    assert bot.snapshot() == before
    bot.say(LIFT)
    before = bot.snapshot()
    assert "That is not a photo I can keep (JPEG or PNG)." in send(b"GIF89a...")
    assert "The photo is too large (2000 KB); at most 2000 KB please." in send(b"\xff\xd8" + b"0" * PHOTO_MAX)
    assert bot.snapshot() == before  # refused: the step is asked again, nothing kept
    assert send(jpeg(640, 480)) == "The photo is kept with the issue.\nPlease describe the situation:"
    assert "Choose the scope:" in send(
        jpeg(320, 240), LIFT_DETAILS
    )  # another photo, with the words: it replaces the first
    bot.say("1")
    bot.say("yes")
    with bot.db.transaction() as session:
        assert session.scalars(select(IssuePhoto.data)).all() == [jpeg(320, 240)]
    assert bot.say("/issue 1").startswith(f"[photo: {len(jpeg(320, 240)):,} bytes]\nIssue #1: {LIFT}")


def test_a_vote_keyword_on_a_line_of_its_own_leaves_the_dialog_and_is_never_its_answer(
    bot_en: TestBot,
) -> None:
    bot = bot_en
    bot.say("/as 欧阳明")
    bot.say("/raise")
    reply = bot.say("投票\n1 1")  # a vote's arguments never land in dialog data or a title
    assert "(The previous dialog was cancelled.)" in reply
    with bot.db.transaction() as session:
        assert session.scalar(select(DialogState)) is None
