"""Withdraw, escalate, refer and merge: the author's, leaders' and committee's moves."""

from __future__ import annotations

from sqlalchemy import select

from storage.models import AuditLog, Support, Transition
from tests.harness import TestBot


def raise_issue(bot: TestBot, author: str, title: str, scope: str = "1") -> None:
    bot.say(f"/as {author}")
    bot.raise_issue(title, "详细情况见标题。", scope)


def test_withdraw_by_the_author_only(bot_en: TestBot) -> None:
    raise_issue(bot_en, "欧阳明", "1栋楼道灯不亮")
    bot_en.say("/support 1", as_="李伟@1栋-102")
    bot_en.verify_dialog(
        [
            ("/withdraw 1", "Only the author of issue #1 can withdraw it."),
            ("/as 欧阳明", "欧阳明"),
            (
                "/withdraw 1",
                [
                    "Issue #1 was withdrawn.",
                    "[→ 李伟@1栋-102] Issue #1 1栋楼道灯不亮 was withdrawn by its author.",
                ],
            ),
            ("/withdraw 1", "Issue #1 is withdrawn and can no longer be withdrawn."),
            ("/support 1", "Issue #1 is no longer gathering support."),
        ]
    )
    assert bot_en.issue(1).status == "withdrawn"


def test_withdraw_in_chinese_names_the_status(bot: TestBot) -> None:
    raise_issue(bot, "欧阳明", "1栋楼道灯不亮")
    bot.say("/withdraw 1")
    reply = bot.say("撤回 1")
    assert "已撤回" in reply and "withdrawn" not in reply


def test_escalate_shows_the_new_threshold_and_keeps_the_status(bot_en: TestBot) -> None:
    raise_issue(bot_en, "欧阳明", "1栋门口积水")
    bot_en.verify_dialog(
        [
            ("/escalate 1", "Only building leaders, grid workers and committee members can do this."),
            ("/as 马建国", "马建国"),  # the leader of 2栋, not 1栋
            (
                "/escalate 1",
                "Only the building leader, the grid worker or the committee responsible can escalate issue #1.",
            ),
            ("/as 孙丽华", "孙丽华"),  # the leader of 1栋
            # 东一网格 holds 9 households: threshold max(3, 1) = 3; one household supports
            (
                "/escalate 1",
                "Issue #1 now belongs to 梧桐社区/东片区/东一网格; its threshold there is 3 households (1 support it).",
            ),
            ("/escalate 1", "Only the building leader, the grid worker or the committee responsible"),
            ("/as 林晓东", "林晓东"),  # the grid worker of 东一网格
            ("/escalate 1", "now belongs to 梧桐社区/东片区"),
            ("/as 周书记", "周书记"),
            ("上报 1", "now belongs to 梧桐社区;"),
            ("/escalate 1", "Issue #1 is already at the scope of the whole community."),
        ]
    )
    issue = bot_en.issue(1)
    assert issue.status == "raised" and issue.scope.path == "梧桐社区"
    with bot_en.db.transaction() as session:
        moves = session.scalars(select(AuditLog.detail).where(AuditLog.action == "escalate")).all()
    assert [m["to"] for m in moves] == ["梧桐社区/东片区/东一网格", "梧桐社区/东片区", "梧桐社区"]


def test_refer_outside_the_remit(bot_en: TestBot) -> None:
    raise_issue(bot_en, "欧阳明", "小区门口公交站太远")
    bot_en.verify_dialog(
        [
            ("/refer 1 区交通局", "Only committee members can do this."),
            ("/as 周书记", "周书记"),
            ("/refer 1", "Usage: /refer N BODY"),
            ("/refer 1 区交通局", "Issue #1 was referred to 区交通局."),
            ("/refer 1 区交通局", "can no longer be referred"),
        ]
    )
    assert bot_en.issue(1).status == "referred"


def test_merge_moves_supporters_and_can_open_discussion(bot_en: TestBot) -> None:
    raise_issue(bot_en, "欧阳明", "1栋电梯经常停运")
    raise_issue(bot_en, "王芳", "电梯总是坏", scope="2")
    bot_en.say("/support 2", as_="李伟@1栋-102")
    bot_en.say("/as 刘洋")  # a member of 谢委员's household, with an account
    bot_en.verify_dialog(
        [
            ("/as 周书记", "周书记"),
            ("/merge 2 2", "An issue cannot be merged into itself."),
            ("/merge 2 9", "There is no issue #9."),
            ("/merge 2", "Usage: /merge N M"),
            # 王芳 (103) and 李伟 (102) join 欧阳明 (101): three households, the threshold of 1栋
            (
                "/merge 2 1",
                ["Issue #2 was merged into #1; 2 supporters moved with it.", "[→ 欧阳明] Your issue #1"],
            ),
            ("/merge 2 1", "can no longer be merged"),
        ]
    )
    assert bot_en.issue(2).status == "merged" and bot_en.issue(2).merged_into_id == 1
    assert bot_en.issue(1).status == "discussing"
    with bot_en.db.transaction() as session:
        assert len(session.scalars(select(Support).where(Support.issue_id == 1)).all()) == 3
        assert session.scalars(select(Transition.status).where(Transition.issue_id == 2)).all() == [
            "raised",
            "merged",
        ]


def test_merge_skips_supporters_outside_the_target_scope(bot_en: TestBot) -> None:
    raise_issue(bot_en, "欧阳明", "1栋电梯经常停运")
    raise_issue(bot_en, "陈静", "电梯总是坏", scope="2")  # 2栋, in the grid
    reply = bot_en.say("/merge 2 1", as_="谢委员")
    assert "0 supporters moved" in reply
