"""Due work: deadlines and reminders as rows, claimed once and acted on in the claim's transaction.

The cause of a deadline writes its row (`schedule`) in its own transaction. `run_due(now)`
claims each row that has fallen due with `UPDATE … SET fired_at WHERE fired_at IS NULL`
and acts only if it won, in the same transaction: a restart, a late wake-up or a second
clock loses and doubles nothing. A row whose reason has passed (the vote was closed early,
the item is done) is claimed and dropped, not acted on late. Work is dated at its due time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flows import actions, digest, lifecycle, outbox, schedule, scopes, settings, votes
from flows import issues as issue_flow
from locales import N_
from storage.db import Database
from storage.models import (
    ActionItem,
    Ballot,
    DueWork,
    Eligible,
    Group,
    HandledUpdate,
    Household,
    Issue,
    Participation,
    Person,
    Poll,
    Scope,
)
from storage.seal import BallotKey

log = logging.getLogger("yishi.due")

_CLAIM = (
    DueWork.__table__.update()
    .where(DueWork.__table__.c.id == bindparam("row"), DueWork.__table__.c.fired_at.is_(None))
    .values(fired_at=bindparam("now"))
)


class Run(NamedTuple):
    """What every piece of due work may need besides its row."""

    now: datetime  # when it runs (it is dated at its due time)
    key: BallotKey  # opens the sealed tallies of secret polls at their close


def plan_digests(db: Database, now: datetime, default_tz: str, since: datetime | None = None) -> datetime:
    """Rows for the digests of the 08:00s (local) after `since` (by default, of the last day) up
    to `now`, one per (reader, day): a clock that was down catches up, and two clocks plan the
    same rows (the second plans nothing: the rows are keyed, see `schedule.at`). The next 08:00
    of any community after `now`."""
    with db.transaction() as session:
        communities = session.scalars(select(Scope.id).where(Scope.level == "community")).all()
        following = now + digest.DAILY
        for community_id in communities:
            tz = str(settings.get(session, community_id, "timezone", default_tz))
            for moment in digest.due_times(
                session, community_id, default_tz, since or now - digest.DAILY, now
            ):
                local_day = moment.astimezone(ZoneInfo(tz))
                for reader, _ in digest.readers(session, community_id, local_day):
                    schedule.at(
                        session, "digest", reader.id, moment, key=f"digest:{reader.id}:{local_day.date()}"
                    )
                if local_day.weekday() == 0:  # the bound groups' weekly digest, on Mondays
                    for group_id in session.scalars(
                        select(Group.id).where(Group.community_id == community_id, Group.unbound_at.is_(None))
                    ):
                        key = f"group_digest:{group_id}:{local_day.date()}"
                        schedule.at(session, "group_digest", group_id, moment, key=key)
            later = digest.due_times(session, community_id, default_tz, now, now + digest.DAILY)
            following = min([following, *later])
        return following


UPDATES_KEPT = timedelta(days=7)  # a platform retries an update for hours at most


class DigestPlanner:
    """Plans the digests once per 08:00, not at every run: a process remembers the next 08:00 of
    any community and plans again when it has passed (or an hour later at the latest, so that a
    new community or time zone is taken up)."""

    RECHECK = timedelta(hours=1)

    def __init__(self) -> None:
        self.planned: datetime | None = None  # planned up to here
        self.next: datetime | None = None  # when to plan again

    def plan(self, db: Database, now: datetime, default_tz: str) -> None:
        if self.planned is not None and self.next is not None and self.planned <= now < self.next:
            return
        # at most the last day is caught up on, as at start: a digest of long ago is not sent late
        since = max(self.planned, now - digest.DAILY) if self.planned and self.planned <= now else None
        following = plan_digests(db, now, default_tz, since)
        self.planned, self.next = now, min(following, now + self.RECHECK)
        with db.transaction() as session:  # and, as seldom, the keys of updates too old to come again
            session.execute(delete(HandledUpdate).where(HandledUpdate.handled_at < now - UPDATES_KEPT))


def run_due(
    db: Database,
    now: datetime,
    key: BallotKey,
    default_tz: str = "Asia/Shanghai",
    planner: DigestPlanner | None = None,
) -> int:
    """Claim and do everything due by `now`, oldest first; the number of rows this run won.
    Work that fails (a bug, a ballot key that does not open a poll) is logged and undone with its
    claim, so a later run tries it again, and holds up none of the rest."""
    (planner or DigestPlanner()).plan(db, now, default_tz)
    run, won, failed = Run(now, key), 0, set()
    while True:
        query = (
            select(DueWork.id, DueWork.kind, DueWork.subject_id, DueWork.due_at)
            .where(DueWork.fired_at.is_(None), DueWork.due_at <= now)
            .order_by(DueWork.due_at, DueWork.id)
            .limit(500)
        )
        with db.transaction() as session:
            batch = session.execute(query.where(DueWork.id.not_in(failed)) if failed else query).all()
        if not batch:
            return won
        for row_id, kind, subject_id, due_at in batch:
            try:
                with db.transaction() as session:
                    if session.connection().execute(_CLAIM, {"row": row_id, "now": now}).rowcount != 1:
                        continue  # another clock took it
                    WORK[kind](session, subject_id, due_at, run)
                    won += 1
            except IntegrityError:
                log.warning("due work %s %s lost a race and was left to the winner", kind, subject_id)
                failed.add(row_id)
            except Exception:
                log.exception("due work %s %s failed; it is tried again at the next run", kind, subject_id)
                failed.add(row_id)


# --- the work itself -----------------------------------------------------------------------------


def _expire(session: Session, issue_id: int, at: datetime, run: Run) -> None:
    issue = issue_flow.lock(
        session, issue_id
    )  # a support arriving at the deadline goes first, or finds it expired
    if issue.status != "raised":
        return
    lifecycle.move(session, issue, "expired", at=at, actor_id=None)
    outbox.notify(
        session, issue.author, at,
        "Your issue #{id} {title} did not gather enough support in time and has expired. If the matter remains, raise it again with /raise and ask your neighbours to support it.",
        id=issue.id, title=issue.title,
    )  # fmt: skip


def _open_poll(session: Session, poll_id: int) -> Poll | None:
    poll = session.get(Poll, poll_id)
    return poll if poll is not None and poll.closed_at is None else None


def _close(session: Session, poll_id: int, at: datetime, run: Run) -> None:
    poll = _open_poll(session, poll_id)
    if poll is not None:
        votes.close(session, poll, at, None, run.key)


def _remind(session: Session, poll_id: int, at: datetime, run: Run) -> None:
    """Everyone who may vote and whose unit has not: a private reminder."""
    poll = _open_poll(session, poll_id)
    if poll is None or run.now >= poll.closes_at:  # the vote is over, or about to be counted: too late
        return
    table = Participation if poll.secret else Ballot
    voted = set(session.scalars(select(table.unit_id).where(table.poll_id == poll.id)))
    hours = max(1, round((poll.closes_at - at).total_seconds() / 3600))
    waiting = [
        person.id for person in votes.voters(session, poll)
        if votes.unit_of(poll.unit, person) not in voted
    ]  # fmt: skip
    outbox.notify_all(
        session, waiting, at, "Reminder: the vote on issue #{id} closes in {hours} hours and your vote is not in yet. /issue {id}",
        reason=f"poll:{poll.id}", id=poll.issue_id, hours=hours,
    )  # fmt: skip
    msgid, params = group_reminder(session, poll, at)
    scope = session.get(Scope, poll.scope_id)
    assert scope is not None
    outbox.announce(session, scope, at, msgid, reason=f"poll:{poll.id}", **params)


_ITEM = select(ActionItem.title, ActionItem.owner_id, ActionItem.done_at).where(
    ActionItem.id == bindparam("item")
)


def group_reminder(session: Session, poll: Poll, at: datetime) -> tuple[str, dict]:
    """The one message a group bound to the poll's scope gets before the close: the turnout, and
    the rooms still to vote only where the community's setting allows naming them (off by
    default: it is personal information) and never for a secret poll. Groups are bound by the
    chat channels; this is the rule they send by."""
    issue = session.get(Issue, poll.issue_id)
    assert issue is not None
    table = Participation if poll.secret else Ballot
    voted = set(session.scalars(select(table.unit_id).where(table.poll_id == poll.id)))
    params: dict = {"id": issue.id, "title": issue.title, "turnout": len(voted), "eligible": poll.eligible}
    allowed = settings.get(session, issue.community_id, "group_names_rooms") == "on"
    if poll.secret or not allowed or poll.unit != "household":
        return N_("The vote on issue #{id} {title}: {turnout} of {eligible} have voted. /issue {id}"), params
    waiting = [
        f"{h.building.name}{h.room}"
        for h in session.scalars(
            select(Household)
            .join(Eligible, Eligible.unit_id == Household.id)
            .where(Eligible.poll_id == poll.id)
        )
        if h.id not in voted
    ]
    return (
        N_("The vote on issue #{id} {title}: {turnout} of {eligible} have voted; still to vote: {rooms}."),
        params | {"rooms": "、".join(waiting)},
    )


def _item_due(session: Session, item_id: int, at: datetime, run: Run) -> None:
    item = session.connection().execute(_ITEM, {"item": item_id}).first()
    if (
        item is None or item.done_at is not None or run.now >= at + schedule.ITEM_REMINDER
    ):  # done, or late already
        return
    outbox.notify(
        session, item.owner_id, at, "Action item #{item} ({title}) is due within a day. /progress {item} PCT TEXT or /done {item}.",
        reason=f"item:{item_id}", item=item_id, title=item.title,
    )  # fmt: skip


def _escalate_item(session: Session, item_id: int, at: datetime, run: Run) -> None:
    """Seven days overdue: the people responsible one scope up are told, and the residents."""
    item = session.get(ActionItem, item_id)
    issue = session.get(Issue, item.issue_id) if item else None
    if item is None or issue is None or item.done_at is not None:
        return
    for person in _responsible_above(session, issue.scope):
        outbox.notify(
            session, person, at, "Action item #{item} ({title}) of issue #{id} is seven days overdue; its owner is {owner}.",
            item=item.id, title=item.title, id=issue.id, owner=item.owner.name,
        )  # fmt: skip
    issue_flow.tell(
        session,
        issue,
        at,
        "Action item #{item} of issue #{id} {title} is seven days overdue and was escalated.",
        None,
        item=item.id,
    )


def _responsible_above(session: Session, scope: Scope) -> list[Person]:
    """The grid worker of the issue's grid (for a building issue), else the committee."""
    if scope.level == "building" and scope.parent_id is not None:
        grid = session.get(Scope, scope.parent_id)
        workers = [
            p for p in session.scalars(select(Person).where(Person.community_id == scopes.community_id(scope), Person.moved_out.is_(False)))
            if "grid_worker" in scopes.roles(p) and grid is not None and scopes.duty_grid(session, p) == grid
        ]  # fmt: skip
        if workers:
            return workers
    return issue_flow.committee(session, scopes.community_id(scope))


def _verdict(session: Session, issue_id: int, at: datetime, run: Run) -> None:
    issue = issue_flow.lock(session, issue_id)  # a rating still being given is waited for and counted
    # a row of an earlier round (the issue was reopened and done again since) is dropped
    if (
        issue is not None
        and issue.status == "done"
        and issue.done_at
        and issue.done_at + schedule.VERDICT_AFTER <= at
    ):
        actions.verdict(session, issue, at)


def _digest(session: Session, person_id: int, at: datetime, run: Run) -> None:
    reader = session.get(Person, person_id)
    if reader is None or reader.moved_out:
        return
    start = at - digest.period_of(reader)
    if digest.collect(session, reader, start, at).empty():
        log.info("digest for person %s: nothing to say for %s – %s", person_id, start, at)
        return
    outbox.notify(
        session,
        reader,
        at,
        "Digest of your scopes (摘要)",
        digest_start=start.isoformat(),
        digest_end=at.isoformat(),
    )


def _group_digest(session: Session, group_id: int, at: datetime, run: Run) -> None:
    """A bound group's weekly digest of its scope (with the community's audit head)."""
    group = session.get(Group, group_id)
    if group is None or group.unbound_at is not None:
        return
    start = at - digest.WEEKLY
    if digest.collect_for(session, group.scope, start, at).empty():
        log.info("digest for group %s: nothing to say for %s – %s", group_id, start, at)
        return
    outbox.notify_group(
        session,
        group.id,
        at,
        "Digest of your scopes (摘要)",
        digest_start=start.isoformat(),
        digest_end=at.isoformat(),
    )


# each: (session, subject id, when it fell due, the run); acts at its due time
WORK: dict[str, Callable[[Session, int, datetime, Run], None]] = {
    "digest": _digest,
    "group_digest": _group_digest,
    "expire": _expire,
    "close_poll": _close,
    "remind_vote": _remind,
    "item_due": _item_due,
    "item_overdue": _escalate_item,
    "verdict": _verdict,
}
