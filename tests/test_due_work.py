"""Time with the injected clock: deadlines, reminders, escalation and verdicts fall due once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import func, select

from flows import due
from storage.models import DueWork, Outbox
from tests.harness import TestBot, ballot_key
from tests.test_decide import discussing, open_vote


def test_a_vote_closes_itself_and_reminds_only_those_who_have_not_voted(bot_en: TestBot) -> None:
    discussing(bot_en)
    for who in ("欧阳明", "李伟@1栋-102", "王芳", "张强", "刘洋"):
        bot_en.say(f"/as {who}")
    open_vote(bot_en, "1", "3d", "1", "1", "1")
    for who in ("欧阳明", "李伟@1栋-102", "王芳", "张强"):
        bot_en.say("/vote 1 1", as_=who)
    early = bot_en.say("/clock +47h")
    assert "Reminder" not in early
    day_before = bot_en.say("/clock +1h")  # 24 hours before the close
    assert "[→ 刘洋] Reminder: the vote on issue #1 closes in 24 hours" in day_before
    assert "[→ 欧阳明] Reminder" not in day_before and "[→ 张强] Reminder" not in day_before
    assert "[→ 刘洋] Reminder: the vote on issue #1 closes in 2 hours" in bot_en.say("/clock +22h")
    closed = bot_en.say("/clock +2h")
    # E = 6 households, T = 4, A = 4: passed, and everyone who may vote is told, with the count
    assert "[→ 刘洋] The vote on issue #1 1栋电梯经常停运 has closed: passed." in closed
    assert "Turnout: 4 of 6" in closed and "[1] agree — 4" in closed
    assert bot_en.issue(1).status == "passed"
    assert bot_en.say("/clock +30d").count("[→") == 0  # nothing falls due twice


def test_a_reminder_whose_reason_has_passed_is_dropped(bot_en: TestBot) -> None:
    discussing(bot_en)
    bot_en.say("/as 张强")
    open_vote(bot_en, "1", "3d", "1", "1", "1")
    bot_en.say("/closevote 1", as_="孙丽华")
    assert "Reminder" not in bot_en.say("/clock +3d")
    with bot_en.db.transaction() as session:
        assert (
            session.scalar(select(func.count()).where(DueWork.fired_at.is_(None))) == 1
        )  # the support window only


def passed_with_an_item(bot: TestBot, due_in: str = "3d") -> None:
    discussing(bot)
    open_vote(bot, "1", "3d", "1", "1", "1")
    for who in ("欧阳明", "李伟@1栋-102", "王芳", "张强"):
        bot.say("/vote 1 1", as_=who)
    bot.say("/closevote 1", as_="孙丽华")
    for who in ("吴师傅", "林晓东", "谢委员"):
        bot.say(f"/as {who}")
    bot.say(f"/task 1 吴师傅 {due_in} 检修电梯", as_="谢委员")


def test_an_item_is_reminded_then_escalated_when_late(bot_en: TestBot) -> None:
    passed_with_an_item(bot_en)
    reminded = bot_en.say("/clock +2d")
    assert "[→ 吴师傅] Action item #1 (检修电梯) is due within a day." in reminded
    late = bot_en.say("/clock +8d")  # seven days past the due date
    assert (
        "[→ 林晓东] Action item #1 (检修电梯) of issue #1 is seven days overdue; its owner is 吴师傅." in late
    )
    assert (
        "[→ 欧阳明] Action item #1 of issue #1 1栋电梯经常停运 is seven days overdue and was escalated."
        in late
    )
    assert bot_en.issue(1).scope.name == "1栋"  # the issue keeps its scope


def test_the_verdict_after_seven_days_takes_the_ratings_given(bot_en: TestBot) -> None:
    passed_with_an_item(bot_en)
    bot_en.say("/done 1", as_="吴师傅")
    bot_en.say("/rate 1 1", as_="欧阳明")
    bot_en.say("/clock +6d")
    assert bot_en.issue(1).status == "done"
    assert "reopened" in bot_en.say("/clock +1d")  # one rating, of 1: 2 × 1 > 1
    assert bot_en.issue(1).status == "reopened"


def test_a_deadline_that_passes_while_the_process_is_down(bot_en: TestBot) -> None:
    discussing(bot_en)
    open_vote(bot_en, "1", "1d", "1", "1", "1")
    later = TestBot(bot_en.db, bot_en.clock.now() + timedelta(days=2), locale="en")
    later.console.run(stdin=_Empty())  # a restart: the console catches up before its first line
    assert later.issue(1).status == "no_quorum"


class _Empty:
    def isatty(self) -> bool:
        return False

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(())


def test_two_clocks_claim_each_row_once(bot_en: TestBot) -> None:
    for n in range(6):
        bot_en.say("/as 欧阳明")
        bot_en.raise_issue(f"1栋第{n}号问题")
    at = bot_en.clock.now() + timedelta(days=15)
    with ThreadPoolExecutor(max_workers=2) as pool:
        won = list(pool.map(lambda _: due.run_due(bot_en.db, at, ballot_key()), range(2)))
    assert sum(won) == 6
    with bot_en.db.transaction() as session:
        expired = session.scalar(
            select(func.count()).select_from(Outbox).where(Outbox.msgid.contains("expired"))
        )
    assert expired == 6


def test_a_group_reminder_names_rooms_only_when_allowed_and_never_for_secret_votes(bot_en: TestBot) -> None:
    from flows import settings
    from storage.models import Poll

    discussing(bot_en)
    open_vote(bot_en, "1", "3d", "1", "1", "1")
    for who in ("欧阳明", "李伟@1栋-102"):
        bot_en.say("/vote 1 1", as_=who)
    community = bot_en.issue(1).community_id
    with bot_en.db.transaction() as session:
        poll = session.scalar(select(Poll))
        msgid, params = due.group_reminder(session, poll, bot_en.clock.now())
        assert "rooms" not in params and (params["turnout"], params["eligible"]) == (2, 6)
        settings.put(session, community, "group_names_rooms", "on")
        msgid, params = due.group_reminder(session, poll, bot_en.clock.now())
        assert params["rooms"] == "1栋103、1栋104、1栋105、1栋106" and "still to vote" in msgid
        poll.secret = True
        msgid, params = due.group_reminder(session, poll, bot_en.clock.now())
        assert "rooms" not in params
