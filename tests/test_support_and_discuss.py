"""Supports (附议) until discussion, comments and their moderation, as transcripts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from storage.models import Comment, CommentReport, Support, Transition
from tests.harness import TestBot


def raise_lift(bot: TestBot, author: str = "欧阳明", scope: str = "1") -> None:
    bot.say(f"/as {author}")
    bot.raise_issue("1栋电梯经常停运", "这个月已经停了三次。", scope)


def statuses(bot: TestBot, issue_id: int = 1) -> list[str]:
    with bot.db.transaction() as session:
        return list(
            session.scalars(
                select(Transition.status).where(Transition.issue_id == issue_id).order_by(Transition.id)
            )
        )


def test_households_not_people_reach_the_threshold(bot_en: TestBot) -> None:
    bot = bot_en
    raise_lift(bot)  # 1栋 has 6 households: threshold min(6, max(3, 1)) = 3
    bot.verify_dialog(
        [
            ("/as 欧阳丽", "欧阳丽"),  # same household (101) as the author
            ("/support 1", "You support issue #1; 2 more households are needed for discussion."),
            ("/as 李伟@1栋-102", "李伟"),
            ("附议 1", "You support issue #1; 1 more households are needed for discussion."),
            ("/as 王芳", "王芳"),
            (
                "附议1",
                [
                    "You support issue #1. It has reached its threshold and is now open for discussion.",
                    "[→ 欧阳明] Your issue #1 1栋电梯经常停运 has the support of 3 households",
                ],
            ),
            ("/as 张强", "张强"),
            ("/support #1", "You support issue #1 (4 households)."),
            ("/support 1", "You already support issue #1."),
            (
                "/issue 1",
                ["Status: in discussion", "Support: 5 people from 4 households; threshold 3 households"],
            ),
        ]
    )
    assert statuses(bot) == ["raised", "discussing"]


def test_support_in_chinese(bot: TestBot) -> None:
    raise_lift(bot)
    for who in ("李伟@1栋-102", "王芳"):
        bot.say(f"/as {who}")
        reply = bot.say("/support 1")
        assert "#1" in reply and "support" not in reply
    assert bot.issue(1).status == "discussing"


def test_support_refused_outside_scope_and_after_the_window(bot_en: TestBot) -> None:
    raise_lift(bot_en)
    bot_en.verify_dialog(
        [
            ("/as 陈静", "陈静"),
            (
                "/support 1",
                "Issue #1 belongs to 梧桐社区/东片区/东一网格/1栋; only its residents can support it.",
            ),
            ("/support 99", "There is no issue #99."),
            ("/support x", "x is not an issue number."),
            ("/support", "Usage: /support N"),
        ]
    )
    bot_en.advance(timedelta(days=14))
    # the window's end falls due with the next line: the issue expires, its author is told how to try again
    switched = bot_en.say("/as 李伟@1栋-102")
    assert (
        "[→ 欧阳明] Your issue #1 1栋电梯经常停运 did not gather enough support in time and has expired."
        in switched
    )
    assert "Issue #1 is no longer gathering support." in bot_en.say("/support 1")
    assert bot_en.issue(1).status == "expired"
    with bot_en.db.transaction() as session:
        assert (
            session.scalar(select(Support.id).where(Support.person_id != bot_en.issue(1).author_id)) is None
        )


def test_comments_reports_and_review(bot_en: TestBot) -> None:
    bot = bot_en
    raise_lift(bot, scope="2")  # the grid: 林晓东 (grid worker) may comment too
    bot.say("/as 谢委员")  # a committee member with a chat account is told of hidden comments
    bot.verify_dialog(
        [
            ("/as 陈静", "陈静"),
            (
                "/comment 1 I see the same in building 2",
                ["Comment C1 added to issue #1.", "[→ 欧阳明] New comment C1"],
            ),
            ("/as 林晓东", "林晓东"),
            ("/comment 1 The grid will count the stoppages", "Comment C2 added"),
            ("/as 吴娟", "吴娟"),
            ("/comment 1 not my grid", "only its residents can comment"),
            ("/as 欧阳明", "欧阳明"),
            ("/comment 1", "Usage: /comment N TEXT"),
            ("/report C1", "Your report on comment C1 was recorded."),
            ("/report C1", "You have already reported comment C1."),
            ("/as 陈静", "陈静"),
            ("/report 1", "You cannot report your own comment."),
            ("/as 李伟@1栋-102", "李伟"),
            ("/report 1", "recorded"),
            ("/as 王芳", "王芳"),
            (
                "/report C1",
                [
                    "hidden until the committee reviews it",
                    "[→ 谢委员] Comment C1 on issue #1 was hidden after 3 reports",
                ],
            ),
            ("/issue 1", "C2 林晓东"),
            ("/review C1 keep", "Only committee members can do this."),
            ("/as 谢委员", "谢委员"),
            ("/review C1 maybe", "Say keep or remove"),
            ("/review C1 keep", "Comment C1 is visible again."),
            ("/review C1 remove", "Comment C1 is not waiting for review."),
            ("/issue 1", ["C1 陈静", "C2 林晓东"]),
        ]
    )
    assert "C1" not in bot.say("/issue 1", as_="王芳").split("Comments")[0]
    with bot.db.transaction() as session:
        assert session.scalar(select(Comment.state).where(Comment.id == 1)) == "kept"
        assert len(session.scalars(select(CommentReport)).all()) == 3


def test_removed_comment_disappears(bot: TestBot) -> None:
    raise_lift(bot)
    bot.say("/comment 1 广告:低价装修", as_="李伟@1栋-102")
    for who in ("欧阳明", "王芳", "张强"):
        bot.say("/report C1", as_=who)
    assert "广告" not in bot.say("/issue 1")
    bot.say("/review C1 删除", as_="周书记")
    assert "广告" not in bot.say("/issue 1")
    assert bot.issue(1).status == "raised"
    with bot.db.transaction() as session:
        assert session.scalar(select(Comment.state)) == "removed"


def test_comment_text_limits(bot_en: TestBot) -> None:
    raise_lift(bot_en)
    reply = bot_en.say("/comment 1 " + "字" * 2001, as_="李伟@1栋-102")
    assert "2001 characters" in reply
    assert bot_en.count(Comment) == 0
