"""Decide and act as transcripts: a vote, its count, action items, ratings and the verdict."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from storage.models import AuditLog, Ballot, Poll, Rating, Transition
from tests.harness import TestBot


def discussing(bot: TestBot) -> None:
    """Issue #1 in 1栋 (6 households), supported into discussion."""
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运", "这个月已经停了三次。")
    for who in ("李伟@1栋-102", "王芳"):
        bot.say("/support 1", as_=who)
    assert bot.issue(1).status == "discussing"


def open_vote(bot: TestBot, *answers: str, who: str = "孙丽华") -> str:
    bot.say(f"/as {who}")
    reply = bot.say("/openvote 1")
    for answer in answers:
        reply = bot.say(answer)
    return reply


def statuses(bot: TestBot) -> list[str]:
    with bot.db.transaction() as session:
        return list(
            session.scalars(select(Transition.status).where(Transition.issue_id == 1).order_by(Transition.id))
        )


def test_a_whole_cycle_in_english_approve_per_household(bot_en: TestBot) -> None:
    bot = bot_en
    discussing(bot)
    bot.say("/as 张强")  # has an account: is told the vote opened
    bot.verify_dialog(
        [
            ("/as 孙丽华", "孙丽华"),
            ("/openvote 1", ["What kind of vote on issue #1?", "[1] Agree / disagree / abstain"]),
            ("1", "How long should the vote stay open?"),
            ("3d", ["A secret ballot?", "[1] Open: named, changeable until the close"]),
            ("1", ["Count the votes per household or per person?", "[1] Per household"]),
            (
                "1",
                [
                    "Confirm: open the vote on issue #1 1栋电梯经常停运?",
                    "Question: agree / disagree / abstain",
                    "Closes at 2026-12-04 10:00",
                    "One vote per home; 6 homes may vote",
                    "Valid when more than 1/2 of the 6 take part (at least 4).",
                    "Passes when more than 1/2 of those taking part agree",
                    "[1] Confirm and open",
                ],
            ),
            (
                "1",
                [
                    "The vote on issue #1 is open until 2026-12-04 10:00: 6 may vote.",
                    "[→ 张强] A vote has opened on issue #1",
                ],
            ),
            (
                "/issue 1",
                [
                    "Vote (Agree / disagree / abstain): open until 2026-12-04 10:00",
                    "Turnout: 0 of 6",
                    "[1] agree — 0",
                    "[3] abstain — 0",
                ],
            ),
            ("/as 欧阳明", "欧阳明"),
            ("/vote 1 1", "Your ballot on issue #1 is recorded: agree. You may change it until the close."),
            ("/as 欧阳丽", "欧阳丽"),  # the same household
            ("/vote 1 2", "Your household has already voted; only the member who voted can change it."),
            ("/as 欧阳明", "欧阳明"),
            ("/vote 1 2", "Your ballot on issue #1 is changed: disagree."),
            ("/vote 1 1", "changed: agree"),
            ("/as 李伟@1栋-102", "李伟"),
            ("投票 1 1", "recorded: agree"),
            ("/as 王芳", "王芳"),
            ("/vote 1 3", "recorded: abstain"),
            ("/as 孙丽华", "孙丽华"),
            ("/proxyvote 1 张强 1", "张强 has a chat account and votes in person."),
            ("/proxyvote 1 孙丽华 1", "Vote for yourself with /vote."),
            ("/proxyvote 1 刘洋 1", "Ballot entered for 刘洋 on issue #1; the record shows you entered it."),
            ("/proxyvote 1 谢委员 2", "The household of 谢委员 has already voted."),
            ("/my", "You have raised no open issues."),
            # E = 6, T = 4 (2·4 > 6), A = 3 (2·3 > 4): passed
            (
                "/closevote 1",
                [
                    "The vote on issue #1 is closed.",
                    "Turnout: 4 of 6",
                    "[1] agree — 3 ████████ ✓",
                    "Result: passed; quorum met.",
                ],
            ),
        ]
    )
    assert statuses(bot) == ["raised", "discussing", "voting", "passed"]
    with bot.db.transaction() as session:
        poll = session.scalar(select(Poll))
        assert (poll.eligible, poll.turnout, poll.quorum_met, poll.outcome) == (6, 4, True, "passed")
        proxy = session.scalar(select(AuditLog).where(AuditLog.action == "proxy vote"))
        assert proxy is not None and proxy.detail["choices"] == [1]
    bot.verify_dialog(
        [
            ("/as 谢委员", "谢委员"),
            (
                "/task 1 吴师傅 2026-12-10 联系电梯维保公司检修",
                "#1 assigned to 吴师傅 for issue #1, due 2026-12-10 24:00.",
            ),
            ("/task 1 吴师傅 5d 更换控制柜", "#2 assigned"),
            ("/as 吴师傅", "吴师傅"),
            (
                "/my",
                [
                    "Your action items:",
                    "Action item #1: 联系电梯维保公司检修 — 吴师傅, due 2026-12-10 24:00, progress 0%",
                ],
            ),
            (
                "/progress 1 50 已联系维保公司",
                ["Action item #1: progress 50%.", "[→ 欧阳明] Action item #1 of issue #1"],
            ),
            ("/done 1", "Action item #1 is done."),
            ("/done 2", ["all the work on issue #1", "[→ 李伟@1栋-102] Every action item of issue #1"]),
        ]
    )
    assert bot.issue(1).status == "done"
    # the author and the two supporters are asked; two of three unhappy: reopened
    bot.verify_dialog(
        [
            ("/as 欧阳明", "欧阳明"),
            ("/rate 1 2 还是经常停", "Thank you: your rating of issue #1 is 2."),
            ("/as 李伟@1栋-102", "李伟"),
            ("/rate 1 1", "is 1"),
            ("/as 王芳", "王芳"),
            ("/rate 1 5", ["is 5", "Everyone asked has rated; the verdict on issue #1: reopened."]),
            ("/as 谢委员", "谢委员"),
            ("/task 1 吴师傅 3d 再次检修", "#3 assigned"),
        ]
    )
    assert bot.issue(1).status == "acting"
    bot.say("/done 3", as_="吴师傅")
    for who, score in (("欧阳明", 4), ("李伟@1栋-102", 5), ("王芳", 1)):
        bot.say(f"/rate 1 {score}", as_=who)
    assert statuses(bot)[-5:] == ["done", "reopened", "acting", "done", "closed"]
    with bot.db.transaction() as session:
        assert session.scalars(select(Rating.round).distinct().order_by(Rating.round)).all() == [1, 2]


def test_a_whole_cycle_in_chinese_single_choice_per_person(bot: TestBot) -> None:
    discussing(bot)
    reply = open_vote(bot, "2", "东门;西门;南门", "2d", "1", "2")
    assert "确认" in reply and "每人一票，共 8 人有投票权" in reply
    assert "表决已" in bot.say("1") or bot.issue(1).status == "voting"
    for who, choice in (
        ("欧阳明", "1"),
        ("欧阳丽", "1"),
        ("李伟@1栋-102", "1"),
        ("王芳", "2"),
        ("张强", "1"),
    ):
        bot.say(f"/vote 1 {choice}", as_=who)
    # E = 8 people, T = 5, 东门 4 > 西门 1 and 2·4 > 5: passed
    view = bot.say("/closevote 1", as_="孙丽华")
    assert "[1] 东门 — 4" in view and "已通过" in view
    bot.say("/task 1 吴师傅 1w 在东门加装门禁", as_="周书记")
    bot.say("/done 1", as_="吴师傅")
    for who in ("欧阳明", "李伟@1栋-102", "王芳"):
        bot.say("/rate 1 4", as_=who)
    assert bot.issue(1).status == "closed"


def test_multiple_choice_secret_ballot(bot_en: TestBot) -> None:
    discussing(bot_en)
    assert "At most how many" in open_vote(bot_en, "3", "路灯;监控;门禁;绿化")
    bot_en.say("2")
    reply = bot_en.say("48h")
    assert "A secret ballot?" in reply
    bot_en.say("2")
    assert "at most 2" in bot_en.say("2")
    bot_en.say("yes")
    for who, picks in (
        ("欧阳明", "1 2"),
        ("欧阳丽", "2"),
        ("李伟@1栋-102", "2 3"),
        ("王芳", "1 2"),
        ("张强", "4"),
    ):
        assert "secret ballot on issue #1 is cast" in bot_en.say(f"/vote 1 {picks}", as_=who)
    assert "final" in bot_en.say("/vote 1 1", as_="王芳")
    view = bot_en.say("/issue 1")
    assert "[2] 监控\n" in view + "\n" and "— " not in view.split("Turnout")[1].split("Vote with")[0]
    closed = bot_en.say("/closevote 1", as_="周书记")
    # E = 8, T = 5: 监控 4 adopted (2·4 > 5); 路灯 2, 门禁 1, 绿化 1 not
    assert "[2] 监控 — 4" in closed and "✓" in closed.split("[2]")[1].split("\n")[0]
    assert "✓" not in closed.split("[1]")[1].split("\n")[0]
    assert bot_en.issue(1).status == "passed"


def test_no_quorum_and_a_second_vote(bot_en: TestBot) -> None:
    discussing(bot_en)
    open_vote(bot_en, "1", "3d", "1", "1", "1")
    bot_en.say("/vote 1 1", as_="欧阳明")
    bot_en.say("/vote 1 1", as_="李伟@1栋-102")
    assert "Result: no quorum; quorum not met." in bot_en.say("/closevote 1", as_="孙丽华")
    assert bot_en.issue(1).status == "no_quorum"
    assert "What kind of vote" in bot_en.say("/openvote 1")  # a leader may open a new vote


REFUSALS = [
    ("欧阳明", "/vote 1 1", "There is no open vote on issue #1."),
    ("欧阳明", "/vote 9 1", "There is no issue #9."),
    ("欧阳明", "/vote 1", "There is no open vote on issue #1."),  # /vote N alone shows the ballot
    ("欧阳明", "/vote", "Usage: /vote N CHOICE…"),
    ("吴师傅", "/openvote 1", "Only building leaders and committee members can do this."),
    ("马建国", "/openvote 1", "Only the building's leader or the committee can open a vote on issue #1."),
    ("欧阳明", "/task 1 吴师傅 3d 修电梯", "Only committee members can do this."),
    (
        "谢委员",
        "/task 1 吴师傅 3d 修电梯",
        "Issue #1 is in discussion; action items follow a vote that passed.",
    ),
    ("欧阳明", "/major 1", "Only committee members can do this."),
    ("王芳", "/rate 1 5", "ratings are asked for when its work is done"),
    ("陈静", "/rate 1 5", "Only the author and the supporters of issue #1 rate it."),
    ("吴师傅", "/done 1", "Only owners of action items can do this."),
]


@pytest.mark.parametrize(("who", "command", "refusal"), REFUSALS)
def test_refusals_before_a_vote(bot_en: TestBot, who: str, command: str, refusal: str) -> None:
    discussing(bot_en)
    bot_en.say(f"/as {who}")
    before = bot_en.snapshot()
    assert refusal in bot_en.say(command)
    assert bot_en.snapshot() == before


def test_refusals_while_voting_and_acting(bot_en: TestBot) -> None:
    discussing(bot_en)
    assert "That time has already passed." in open_vote(bot_en, "1", "2026-11-30 12:00")
    assert "A vote may stay open at most 60 days." in bot_en.say("61d")
    assert "not a time" in bot_en.say("soon")
    for answer in ("3d", "1", "1", "1"):
        bot_en.say(answer)
    bot_en.verify_dialog(
        [
            ("/as 欧阳明", "欧阳明"),
            ("/vote 1 4", "4 is not a choice: use the numbers 1–3"),
            ("/vote 1 1 2", "You may choose at most 1 here."),
            ("/vote 1 x", "x is not a choice"),
            ("/as 陈静", "陈静"),  # 2栋
            ("/vote 1 1", "陈静 is not eligible in the vote on issue #1."),
            ("/as 孙丽华", "孙丽华"),
            ("/proxyvote 1 陈静 1", "You can enter ballots only for residents of your own building."),
            ("/proxyvote 1 无名氏 1", "Nobody called 无名氏 is in the register."),
            ("/withdraw 1", "Only the author"),
            ("/as 欧阳明", "欧阳明"),
            ("/withdraw 1", "Issue #1 cannot be withdrawn while its vote is open."),
            ("/closevote 1", "Only building leaders and committee members can do this."),
            ("/as 马建国", "马建国"),  # a leader, but of 2栋 and not the opener
            ("/closevote 1", "Only the person who opened the vote or the committee can close it early."),
        ]
    )
    for who in ("欧阳明", "李伟@1栋-102", "王芳", "张强"):
        bot_en.say("/vote 1 1", as_=who)
    bot_en.say("/closevote 1", as_="孙丽华")
    bot_en.verify_dialog(
        [
            ("/vote 1 1", "There is no open vote on issue #1."),
            ("/as 谢委员", "谢委员"),
            ("/task 1 无名氏 3d 修电梯", "Nobody called 无名氏 is in the register."),
            ("/task 1 吴师傅 2026-11-01 修电梯", "The due time 2026-11-01 24:00 has already passed."),
            ("/task 1 吴师傅 someday 修电梯", "someday is not a time"),
            ("/task 1 吴师傅 3d 修电梯", "#1 assigned"),
            ("/progress 1 50 开始了", "Only owners of action items can do this."),
            ("/done 1", "Only owners of action items can do this."),
            ("/as 吴师傅", "吴师傅"),
            ("/progress 1 150 很快", "150 is not a percentage from 0 to 100."),
            ("/progress 1 -5 很快", "-5 is not a percentage"),
            ("/done 1", "Action item #1 is done"),
            ("/done 1", "Action item #1 is already done."),
            ("/as 王芳", "王芳"),
            ("/rate 1 9", "Rate from 1 (not settled at all) to 5 (fully settled)."),
        ]
    )


def test_a_vote_past_its_deadline_takes_no_ballots(bot_en: TestBot) -> None:
    discussing(bot_en)
    open_vote(bot_en, "1", "1d", "1", "1", "1")
    bot_en.advance(timedelta(days=1))
    # the console is its own clock: the deadline closed the vote before this ballot arrived
    assert "There is no open vote on issue #1." in bot_en.say("/vote 1 1", as_="欧阳明")
    assert bot_en.issue(1).status == "no_quorum"
    with bot_en.db.transaction() as session:
        assert session.scalar(select(Ballot.id)) is None


def test_major_matters_need_two_thirds(bot_en: TestBot) -> None:
    discussing(bot_en)
    assert "flagged as a major matter" in bot_en.say("/major 1", as_="周书记")
    confirm = open_vote(bot_en, "1", "3d", "1", "1")
    assert (
        "A major matter" in confirm and "Valid when at least 2/3 of the 6 take part (at least 4)." in confirm
    )
    bot_en.say("1")
    for who, choice in (("欧阳明", 1), ("李伟@1栋-102", 1), ("王芳", 2), ("张强", 1)):
        bot_en.say(f"/vote 1 {choice}", as_=who)
    # E = 6, T = 4: 3·4 ≥ 2·6; A = 3: 3·3 ≥ 2·4 → passed
    assert "Result: passed" in bot_en.say("/closevote 1", as_="孙丽华")


def test_the_public_record_holds_the_decision(bot_en: TestBot) -> None:
    from flows import export

    discussing(bot_en)
    open_vote(bot_en, "1", "3d", "2", "1", "1")  # secret, per household
    for who, choice in (("欧阳明", 1), ("李伟@1栋-102", 1), ("王芳", 2), ("张强", 1)):
        bot_en.say(f"/vote 1 {choice}", as_=who)
    with bot_en.db.transaction() as session:
        during = export.record(session, None, bot_en.clock.now())["issues"][0]["polls"][0]
    assert during["turnout"] == 4 and all(o["votes"] is None for o in during["options"])
    bot_en.say("/closevote 1", as_="孙丽华")
    bot_en.say("/task 1 吴师傅 3d 检修电梯", as_="谢委员")
    bot_en.say("/done 1", as_="吴师傅")
    for who in ("欧阳明", "李伟@1栋-102", "王芳"):
        bot_en.say("/rate 1 4", as_=who)
    with bot_en.db.transaction() as session:
        issue = export.record(session, None, bot_en.clock.now())["issues"][0]
    poll = issue["polls"][0]
    assert (poll["kind"], poll["unit"], poll["secret"], poll["eligible"], poll["turnout"]) == (
        "approve",
        "household",
        True,
        6,
        4,
    )
    assert poll["quorum_met"] is True and poll["outcome"] == "passed"
    assert [(o["number"], o["label"], o["votes"]) for o in poll["options"]] == [
        (1, "同意", 3),
        (2, "反对", 1),
        (3, "弃权", 0),
    ]
    assert poll["opens_at"].endswith("Z") and poll["closes_at"].endswith("Z")
    (item,) = issue["items"]
    assert (item["title"], item["owner_role"], item["progress"]) == ("检修电梯", "staff", 100) and item[
        "done_at"
    ].endswith("Z")
    assert issue["ratings"] == {"count": 3, "average": 4.0} and issue["status"] == "closed"
