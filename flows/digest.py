"""Digests (摘要): what happened in a reader's scopes over a period, so nobody compiles one by hand.

The committee reads one daily at 08:00, building leaders weekly on Monday at 08:00, and
residents who asked for it (/digest on) weekly. A period with nothing to say sends nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import String, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from flows import actions, audit, scopes, settings, textsense, votes
from flows import issues as issue_flow
from storage.models import Account, ActionItem, Comment, Issue, Person, Poll, Scope, Transition

DAILY, WEEKLY = timedelta(days=1), timedelta(days=7)
AT = time(8, 0)
HOT_TOPICS = 8


@dataclass
class Digest:
    start: datetime
    end: datetime
    new: list[Issue] = field(default_factory=list)
    discussing: list[Issue] = field(default_factory=list)
    closing: list[tuple[Issue, Poll, int]] = field(default_factory=list)  # (issue, poll, turnout)
    results: list[tuple[Issue, Poll]] = field(default_factory=list)
    due: list[ActionItem] = field(default_factory=list)
    overdue: list[ActionItem] = field(default_factory=list)
    satisfaction: list[tuple[Issue, int, float | None]] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    # the community's audit chain as it stands: readers keep copies no operator can rewrite unseen
    head: audit.Head | None = None

    def empty(self) -> bool:
        return not (
            self.new
            or self.discussing
            or self.closing
            or self.results
            or self.due
            or self.overdue
            or self.satisfaction
        )


def period_of(reader: Person) -> timedelta:
    return DAILY if "committee" in scopes.roles(reader) else WEEKLY


def collect(session: Session, reader: Person, start: datetime, end: datetime) -> Digest:
    """The reader's scopes between start and end; votes closing and items due as of `end`."""
    where = issue_flow.in_scopes_of(session, reader)
    if where is None:
        return Digest(start, end)
    return _collect(session, reader.community_id, where, start, end)


def collect_for(session: Session, scope: Scope, start: datetime, end: datetime) -> Digest:
    """A group's digest: its scope, what lies inside it, and the scopes above it."""
    where = scopes.inside(Scope.path, scope.path) | scopes.encloses(Scope.path, literal(scope.path, String()))
    return _collect(session, scopes.community_id(scope), where, start, end)


def _collect(
    session: Session, community_id: int, where: ColumnElement[bool], start: datetime, end: datetime
) -> Digest:
    digest = Digest(start, end)

    def issues(query):  # type: ignore[no-untyped-def]
        return list(
            session.scalars(
                query.join(Scope, Scope.id == Issue.scope_id).where(Issue.community_id == community_id, where)
            )
        )

    digest.new = issues(
        select(Issue).where(Issue.created_at >= start, Issue.created_at < end).order_by(Issue.id)
    )

    def moved_to(status: str) -> list[Issue]:
        moved = select(Transition.issue_id).where(
            Transition.status == status, Transition.at >= start, Transition.at < end
        )
        return issues(select(Issue).where(Issue.id.in_(moved)).order_by(Issue.id))

    digest.discussing = moved_to("discussing")
    for issue, poll in session.execute(
        select(Issue, Poll).join(Poll, Poll.issue_id == Issue.id).join(Scope, Scope.id == Issue.scope_id)
        .where(Issue.community_id == community_id, where)
        .where(Poll.closed_at.is_(None), Poll.closes_at > end, Poll.closes_at <= end + DAILY)
    ).all():  # fmt: skip
        digest.closing.append((issue, poll, votes.turnout(session, poll)))
    digest.results = [
        (issue, poll)
        for issue, poll in session.execute(
            select(Issue, Poll).join(Poll, Poll.issue_id == Issue.id).join(Scope, Scope.id == Issue.scope_id)
            .where(Issue.community_id == community_id, where)
            .where(Poll.closed_at >= start, Poll.closed_at < end).order_by(Poll.closed_at)
        ).all()
    ]  # fmt: skip
    items = (
        select(ActionItem).join(Issue, Issue.id == ActionItem.issue_id).join(Scope, Scope.id == Issue.scope_id)
        .where(Issue.community_id == community_id, where, ActionItem.done_at.is_(None))
    )  # fmt: skip
    digest.due = list(session.scalars(items.where(ActionItem.due_at >= end, ActionItem.due_at < end + DAILY)))
    digest.overdue = list(session.scalars(items.where(ActionItem.due_at < end).order_by(ActionItem.due_at)))
    digest.satisfaction = [
        (issue, *actions.ratings_of(session, issue.id, issue.rating_round)) for issue in moved_to("closed")
    ]
    digest.topics = hot_topics(session, community_id, where, start, end)
    digest.head = audit.head(session, community_id)
    return digest


def hot_topics(
    session: Session, community_id: int, where: ColumnElement[bool], start: datetime, end: datetime
) -> list[str]:
    """The period's most frequent words (jieba) in its new issues and comments."""
    scoped = (
        select(Issue.id)
        .join(Scope, Scope.id == Issue.scope_id)
        .where(Issue.community_id == community_id, where)
    )
    texts = [
        f"{title} {details}"
        for title, details in session.execute(
            select(Issue.title, Issue.details).where(
                Issue.id.in_(scoped), Issue.created_at >= start, Issue.created_at < end
            )
        )
    ]
    texts += session.scalars(
        select(Comment.text).where(Comment.issue_id.in_(scoped), Comment.created_at >= start, Comment.created_at < end)
        .where(Comment.state.in_(("visible", "kept")))
    ).all()  # fmt: skip
    counts = Counter(word for text in texts for word in textsense.keywords(text))
    return [word for word, n in counts.most_common(HOT_TOPICS) if n >= 2] or [
        w for w, _ in counts.most_common(3)
    ]


# --- planning: which readers get a digest, and when --------------------------------------------


def readers(session: Session, community_id: int, local_day: datetime) -> list[tuple[Person, timedelta]]:
    """Who reads a digest at 08:00 on this local day: the committee daily; on Mondays the
    building leaders and the residents who asked for it. Only people with a chat account."""
    monday = local_day.weekday() == 0
    with_account = select(Account.person_id).where(Account.person_id.is_not(None))
    found = []
    for person in session.scalars(
        select(Person).where(
            Person.community_id == community_id, Person.moved_out.is_(False), Person.id.in_(with_account)
        )
    ):
        have = scopes.roles(person)
        if "committee" in have:
            found.append((person, DAILY))
        elif monday and ("building_leader" in have or person.digest):
            found.append((person, WEEKLY))
    return found


def due_times(
    session: Session, community_id: int, fallback_tz: str, since: datetime, until: datetime
) -> list[datetime]:
    """The 08:00 local moments of a community between two instants (UTC), oldest first."""
    tz = ZoneInfo(str(settings.get(session, community_id, "timezone", fallback_tz)))
    day = since.astimezone(tz).date()
    moments = []
    while True:
        moment = datetime.combine(day, AT, tz)
        if moment > until:
            return moments
        if moment > since:
            moments.append(moment.astimezone(until.tzinfo))
        day += timedelta(days=1)
