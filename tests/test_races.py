"""Races on PostgreSQL, made to happen: one transaction is held open at the point that matters
while a competing message or clock runs in a thread; the test waits until that thread is
blocked on a lock (or has finished, as it did before the locks), then commits and checks that
the rule held. Each names the lock or constraint that keeps its rule."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flows import actions, due, people, register, votes
from flows import groups as group_flow
from flows import issues as issue_flow
from flows.messages import Incoming
from storage.db import Database
from storage.models import (
    Account,
    ActionItem,
    Ballot,
    DueWork,
    Group,
    Invite,
    Issue,
    Participation,
    Poll,
    Support,
    Transition,
)
from tests.conftest import START, empty_database
from tests.harness import REGISTER, TestBot
from tests.test_decide import discussing, open_vote


@pytest.fixture
def bot(postgres_url: str) -> Iterator[TestBot]:
    db = Database(postgres_url)
    empty_database(db)
    with db.transaction() as session:
        register.import_file(session, REGISTER.read_bytes(), START)
    yield TestBot(db, START, locale="en")
    db.dispose()


class Racer(threading.Thread):
    """A competitor run in a thread; its result, or what it raised."""

    def __init__(self, work: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.work, self.result, self.error = work, None, None

    def run(self) -> None:
        try:
            self.result = self.work()
        except Exception as exc:
            self.error = exc

    def outcome(self) -> Any:
        self.join(30)
        assert not self.is_alive(), "the competitor never finished"
        if self.error is not None:
            raise self.error
        return self.result


def blocked(db: Database, racer: Racer, timeout: float = 10) -> bool:
    """Wait until a connection to the test database waits on a lock (True), or the racer has
    finished without waiting (False, which is what the code before the locks did)."""
    deadline = time.monotonic() + timeout
    with db.engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).scalar()
            conn.rollback()  # a new snapshot of pg_stat_activity each time
            if waiting:
                return True
            if not racer.is_alive():
                return False
            time.sleep(0.02)
    return False


def race(bot: TestBot, held: Callable[[Session], Any], competitor: Callable[[], Any]) -> tuple[Any, Any]:
    """`held` runs in a transaction kept open until `competitor` (in a thread) waits on a lock;
    then it commits. Both results. A competitor that finishes without waiting fails the test:
    the rule's lock is what each race proves."""
    with bot.db.transaction() as session:
        mine = held(session)
        session.flush()
        racer = Racer(competitor)
        racer.start()
        waited = blocked(bot.db, racer)
    outcome = racer.outcome()
    assert waited, f"the competitor never waited on a lock: {outcome!r}"
    return mine, outcome


def send(bot: TestBot, who: str, text: str) -> str:
    """A message from the person's console account, straight to the dispatcher (thread-safe)."""
    account = f"person:{person(bot, who).id}"
    replies = bot.app.dispatcher.handle(Incoming("console", account, "console", text=text))
    return "\n".join(r.text for r in replies)


def person(bot: TestBot, ref: str) -> Any:
    with bot.db.transaction() as session:
        return people.find(session, ref)


def count(bot: TestBot, query: sa.Select) -> int:
    with bot.db.transaction() as session:
        return session.scalar(query) or 0


def transitions(bot: TestBot, status: str) -> int:
    return count(bot, select(func.count(Transition.id)).where(Transition.status == status))


# --- a ballot and the close: the poll row (FOR SHARE / FOR NO KEY UPDATE, re-checked open) ----------


@pytest.mark.parametrize("secret", [False, True], ids=["open", "secret"])
def test_a_ballot_in_flight_when_the_vote_closes_is_counted(bot: TestBot, secret: bool) -> None:
    discussing(bot)
    open_vote(bot, "1", "3d", "2" if secret else "1", "2", "1")
    bot.say("/as 欧阳明")
    _, closed = race(
        bot,
        lambda s: votes.vote(s, people.find(s, "欧阳明"), 1, ["1"], bot.clock.now(), bot.app.key),
        lambda: send(bot, "孙丽华", "/closevote 1"),
    )
    assert "The vote on issue #1 is closed." in closed
    assert count(bot, select(Poll.turnout)) == 1  # the ballot the voter was told of is in the count
    assert "[1] agree — 1" in bot.say("/issue 1", as_="孙丽华")


@pytest.mark.parametrize("secret", [False, True], ids=["open", "secret"])
def test_a_ballot_arriving_while_the_vote_closes_is_refused_as_too_late(bot: TestBot, secret: bool) -> None:
    discussing(bot)
    open_vote(bot, "1", "3d", "2" if secret else "1", "2", "1")
    bot.say("/as 欧阳明")

    def close(session: Session) -> None:
        poll = session.scalar(select(Poll))
        assert votes.close(session, poll, bot.clock.now(), None, bot.app.key) is not None

    _, reply = race(bot, close, lambda: send(bot, "欧阳明", "/vote 1 1"))
    assert "The vote on issue #1 has closed." in reply
    assert count(bot, select(func.count(Ballot.id))) == count(bot, select(func.count(Participation.id))) == 0
    assert count(bot, select(Poll.turnout)) == 0


# --- changes to one issue take turns: the issue row (FOR NO KEY UPDATE) -----------------------------


def test_two_supports_racing_the_threshold_open_the_discussion_once(bot: TestBot) -> None:
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运")  # 1栋: 6 households, threshold 3
    bot.say("/support 1", as_="王芳")
    for who in ("张强", "刘洋"):
        bot.say(f"/as {who}")
    (_, _, opened), reply = race(
        bot,
        lambda s: issue_flow.support(s, people.resident(s, people.find(s, "张强").id), 1, bot.clock.now()),
        lambda: send(bot, "刘洋", "/support 1"),
    )
    assert opened and "You support issue #1 (4 households)." in reply
    assert transitions(bot, "discussing") == 1
    assert bot.issue(1).status == "discussing"


def _passed(bot: TestBot) -> None:
    discussing(bot)
    open_vote(bot, "1", "3d", "1", "1", "1")
    for who in ("欧阳明", "李伟@1栋-102", "王芳", "张强"):
        bot.say("/vote 1 1", as_=who)
    bot.say("/closevote 1", as_="孙丽华")
    assert bot.issue(1).status == "passed"


def test_two_tasks_on_one_issue_move_it_to_acting_once(bot: TestBot) -> None:
    _passed(bot)
    bot.say("/as 周书记")
    _, reply = race(
        bot,
        lambda s: actions.add(
            s, people.find(s, "周书记"), 1, "吴师傅", "3d", "检修电梯", bot.clock.now(), "Asia/Shanghai"
        ),
        lambda: send(bot, "周书记", "/task 1 吴师傅 5d 更换控制柜"),
    )
    assert "#2 assigned" in reply
    assert transitions(bot, "acting") == 1
    assert count(bot, select(func.count(ActionItem.id))) == 2


def test_a_rating_in_flight_when_the_verdict_falls_due_is_counted(bot: TestBot) -> None:
    _passed(bot)
    bot.say("/task 1 吴师傅 3d 检修电梯", as_="周书记")
    bot.say("/done 1", as_="吴师傅")  # the author and two supporters are asked
    bot.say("/rate 1 5", as_="欧阳明")
    bot.advance(timedelta(days=7))
    rating, won = race(
        bot,
        lambda s: actions.rate(s, people.find(s, "王芳"), 1, "4", "", bot.clock.now()),
        lambda: due.run_due(bot.db, bot.clock.now(), bot.app.key),
    )
    assert rating[1] is None and won >= 1
    with bot.db.transaction() as session:
        verdict = session.scalars(
            select(Transition.status).where(Transition.status.in_(("closed", "reopened")))
        )
        assert list(verdict) == ["closed"]
        detail = session.scalar(
            sa.text("SELECT detail FROM audit_log WHERE action = 'status' ORDER BY id DESC LIMIT 1")
        )
    assert detail["ratings"] == 2  # the rating given while the verdict was taken is in it


# --- accounts, dialogs and invites: the account row, and inserts that leave a row alone -------------


def test_the_first_two_messages_of_a_new_account_both_find_it(bot: TestBot) -> None:
    def first(session: Session) -> None:  # the first message, not yet committed, has made the account
        session.add(Account(channel="console", external_id="newcomer", created_at=START))

    _, reply = race(bot, first, lambda: send_raw(bot, "newcomer", "/start"))
    assert "Welcome to Yishi" in reply
    assert count(bot, select(func.count(Account.id)).where(Account.external_id == "newcomer")) == 1


def send_raw(bot: TestBot, account: str, text: str) -> str:
    return "\n".join(
        r.text for r in bot.app.dispatcher.handle(Incoming("console", account, "console", text=text))
    )


def pause_inside(
    monkeypatch: pytest.MonkeyPatch, target: Any, name: str
) -> tuple[threading.Event, threading.Event]:
    """`target.name` does its work, then waits for `go`: its transaction stays open meanwhile."""
    inside, go, real = threading.Event(), threading.Event(), getattr(target, name)

    def paused(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        inside.set()
        go.wait(10)
        return result

    monkeypatch.setattr(target, name, paused)
    return inside, go


def double_tap(
    bot: TestBot, inside: threading.Event, go: threading.Event, first: Racer, second: Racer
) -> None:
    first.start()
    assert inside.wait(10)
    inside.clear()
    second.start()
    waited, deadline = False, time.monotonic() + 10
    while not waited and not inside.is_set() and time.monotonic() < deadline:
        waited = blocked(bot.db, second, timeout=0.2)
    go.set()
    assert waited, "the second message never waited for the first: both ran at once"


def test_a_double_tapped_confirm_raises_one_issue(bot: TestBot, monkeypatch: pytest.MonkeyPatch) -> None:
    bot.say("/as 欧阳明")
    for line in ("/raise", "1栋电梯经常停运", "停了三次。", "1"):
        bot.say(line)
    inside, go = pause_inside(monkeypatch, issue_flow, "raise_issue")
    taps = [Racer(lambda: send(bot, "欧阳明", "yes")) for _ in range(2)]
    double_tap(bot, inside, go, *taps)
    replies = [t.outcome() for t in taps]
    assert count(bot, select(func.count(Issue.id))) == 1
    assert "Published issue #1" in replies[0]
    assert "I did not understand that" in replies[1]


def test_one_invite_code_sent_from_two_accounts_at_once_binds_one(
    bot: TestBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    with bot.db.transaction() as session:
        code = session.scalar(select(Invite.code).join(Invite.person).where(Invite.person.has(name="刘洋")))
    inside, go = pause_inside(monkeypatch, people, "label")
    joins = [Racer(lambda who=who: send_raw(bot, who, f"/join {code}")) for who in ("phone", "tablet")]
    double_tap(bot, inside, go, *joins)
    replies = [j.outcome() for j in joins]
    assert "Welcome, 刘洋" in replies[0]
    assert f"The invite code {code} has already been used." in replies[1]
    assert count(bot, select(func.count(Account.id)).where(Account.person_id == person(bot, "刘洋").id)) == 1


# --- two clocks: due rows keyed, a duplicate inserted as nothing -------------------------------------


def test_two_clocks_planning_the_same_digest_plan_it_once(bot: TestBot) -> None:
    bot.say("/as 周书记")  # the committee reads a daily digest: one row per (reader, day)
    chief = person(bot, "周书记")
    key = f"digest:{chief.id}:2026-12-02"  # tomorrow's (today's was planned by the console)
    tomorrow = START + timedelta(days=1)

    def other_clock(session: Session) -> None:  # the first clock's row, not yet committed
        session.add(
            DueWork(key=key, kind="digest", subject_id=chief.id, due_at=tomorrow - timedelta(hours=2))
        )

    race(bot, other_clock, lambda: due.plan_digests(bot.db, tomorrow, "Asia/Shanghai"))
    assert count(bot, select(func.count(DueWork.id)).where(DueWork.key == key)) == 1


# --- an update delivered twice (a retried webhook, two workers): its key, recorded with it --------


def test_the_same_update_handled_by_two_workers_at_once_is_handled_once(bot: TestBot) -> None:
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运")
    wang = f"person:{person(bot, '王芳').id}"
    bot.app.dispatcher.handle(Incoming("console", wang, "console", text="/help"))
    support = Incoming("console", wang, "console", text="/support 1", update_key="update-99")

    def first(session: Session) -> None:  # the first worker has recorded the key, not yet committed
        session.execute(
            sa.text(
                "INSERT INTO handled_updates (channel, key, handled_at) VALUES ('console', 'update-99', now())"
            )
        )
        issue_flow.support(
            session, people.resident(session, people.find(session, "王芳").id), 1, bot.clock.now()
        )

    _, second = race(bot, first, lambda: bot.app.dispatcher.handle(support))
    assert second == []  # it waited for the first, then found the key: ignored
    assert count(bot, select(func.count()).select_from(Support)) == 2  # the author's and one


def test_a_repeat_of_an_update_whose_first_handling_was_undone_is_handled(bot: TestBot) -> None:
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运")
    bot.say("/as 王芳")
    wang = f"person:{person(bot, '王芳').id}"
    support = Incoming("console", wang, "console", text="/support 1", update_key="update-100")

    def first(session: Session) -> None:  # a first worker records the key, then fails: rolled back
        session.execute(
            sa.text(
                "INSERT INTO handled_updates (channel, key, handled_at) VALUES ('console', 'update-100', now())"
            )
        )

    with pytest.raises(RuntimeError), bot.db.transaction() as session:
        first(session)
        raise RuntimeError("the first worker died")
    assert "You support issue #1" in bot.app.dispatcher.handle(support)[0].text


def test_two_groups_binding_one_scope_at_once_leave_one_bound_and_refuse_the_other(bot: TestBot) -> None:
    bot.say("/as 孙丽华")
    leader = f"person:{person(bot, '孙丽华').id}"

    def first(session: Session) -> None:  # a first group's binding, not yet committed
        group_flow.bind(session, people.find(session, "孙丽华"), "console", "群甲", "", bot.clock.now(), None)

    link = Incoming("console", leader, "群乙", text="/linkgroup", is_group=True)
    _, replies = race(bot, first, lambda: bot.app.dispatcher.handle(link))
    assert "already has a group here" in replies[0].text  # refused in words, not with an apology
    assert count(bot, select(func.count(Group.id))) == 1
