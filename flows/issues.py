"""Raise and discuss (居民提、居民议): issues, supports (附议), comments and their moderation,
and the committee's and leaders' moves on an issue (escalate, refer, merge, withdraw).

Whatever reads an issue to change it holds the issue's row until commit (`lock`, `get_issue(…,
lock=True)`): changes to one issue take turns, and each sees what the one before wrote. That
is what makes two supports racing the threshold open the discussion once, at the right count.
"""

from __future__ import annotations

import base64
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.sql import ColumnElement

from flows import audit, lifecycle, outbox, people, schedule, scopes, settings, textsense
from flows.errors import Refused
from flows.numbers import whole
from storage.models import Comment, CommentReport, Household, Issue, IssuePhoto, Person, Scope, Support
from storage.prepared import Prepared
from storage.rows import insert_new, locked

TITLE_MAX = 100
TEXT_MAX = 2000
BODY_MAX = 100
LEADERS = ("building_leader", "grid_worker", "committee")


# statements of every support and comment, built once (building them costs more than running them)
_ISSUE = select(Issue).options(joinedload(Issue.scope)).where(Issue.id == bindparam("id"))
# with its scope (every rule of an issue asks for it); the issue's row alone is locked
_LOCKED_ISSUE = locked(
    select(Issue).options(joinedload(Issue.scope, innerjoin=True)).where(Issue.id == bindparam("id")),
    of=Issue,
)
_LOCKED_COMMENT = locked(select(Comment).where(Comment.id == bindparam("id")))
_TALLY = Prepared(
    select(func.count(Support.id), func.count(func.distinct(Support.household_id))).where(
        Support.issue_id == bindparam("id")
    )
)


# --- checks shared by the dialog and the commands ------------------------------------------


def _visible(text: str, keep: str = "") -> str:
    """Without control and format characters (zero-width spaces, direction marks …)."""
    return "".join(c for c in text if c in keep or unicodedata.category(c) not in ("Cc", "Cf"))


def clean_title(text: str) -> str:
    title = " ".join(_visible(text).split())
    if not title:
        raise Refused("The title cannot be empty.")
    if len(title) > TITLE_MAX:
        raise Refused("The title is {n} characters long; at most {max} please.", n=len(title), max=TITLE_MAX)
    return title


def clean_text(text: str) -> str:
    text = _visible(text, keep="\n").strip()
    if not text:
        raise Refused("The text cannot be empty.")
    if len(text) > TEXT_MAX:
        raise Refused("The text is {n} characters long; at most {max} please.", n=len(text), max=TEXT_MAX)
    return text


def parse_id(text: str) -> int:
    number = whole(text.strip().lstrip("#＃"))
    if number is None:
        raise Refused("{value} is not an issue number.", value=text.strip() or "?")
    return number


def require_registered(person: Person | None) -> Person:
    if person is None or person.moved_out:
        raise Refused(
            "You are not in the register yet. Send /join CODE with the invite code from your community."
        )
    return person


def get_issue(session: Session, person: people.Member, issue_id: int, lock: bool = False) -> Issue:
    """The issue of the person's community; with `lock`, held until commit and read as it is now."""
    return _of_community(
        person, issue_id, session.scalar(_LOCKED_ISSUE if lock else _ISSUE, {"id": issue_id})
    )


def _of_community(person: people.Member, issue_id: int, issue: Issue | None) -> Issue:
    if issue is None or issue.community_id != person.community_id:
        raise Refused("There is no issue #{n}.", n=issue_id)
    return issue


def lock(session: Session, issue_id: int) -> Issue:
    """The issue held until commit, read as it is now (see the module's docstring)."""
    issue = session.scalar(_LOCKED_ISSUE, {"id": issue_id})
    assert issue is not None, f"issue #{issue_id} does not exist"
    return issue


def get_comment(
    session: Session, person: Person, comment_id: int, lock: bool = False
) -> tuple[Comment, Issue]:
    """The comment and its issue; with `lock`, the comment is held until commit (reports that
    count towards hiding it take turns)."""
    comment = (
        session.scalar(_LOCKED_COMMENT, {"id": comment_id}) if lock else session.get(Comment, comment_id)
    )
    issue = session.get(Issue, comment.issue_id) if comment else None
    if (
        comment is None
        or issue is None
        or issue.community_id != person.community_id
        or comment.state == "removed"
    ):
        raise Refused("There is no comment C{n}.", n=comment_id)
    return comment, issue


def require_resident(session: Session, person: Person) -> Scope:
    building = scopes.home(session, person)
    _has_home(building is not None)
    assert building is not None
    return building


def _has_home(has: bool) -> None:
    if not has:
        raise Refused("Only residents with a home in the register can do this.")


# --- counting -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    supports: int
    households: int
    threshold: int

    @property
    def needed(self) -> int:
        return max(self.threshold - self.households, 0)


def tally(session: Session, issue: Issue) -> Tally:
    supports, households = _TALLY.first(session, {"id": issue.id})
    return Tally(supports, households, scopes.threshold(session, issue.scope))


def _reach_threshold(
    session: Session, issue: Issue, now: datetime, actor_id: int | None
) -> tuple[bool, Tally]:
    """Move a raised issue to discussion once its supporting households reach the threshold."""
    t = tally(session, issue)
    if issue.status != "raised" or t.households < t.threshold:
        return False, t
    lifecycle.move(
        session, issue, "discussing", at=now, actor_id=actor_id, detail={"households": t.households}
    )
    outbox.announce(
        session, issue.scope, now,
        "Issue #{id} {title} ({scope}) has the support of {households} households and is now open for discussion. /issue {id}",
        id=issue.id, title=issue.title, scope=issue.scope.name, households=t.households,
    )  # fmt: skip
    outbox.notify(
        session,
        issue.author_id,
        now,
        "Your issue #{id} {title} has the support of {households} households and is now open for discussion.",
        id=issue.id,
        title=issue.title,
        households=t.households,
    )
    return True, t


def _add_support(session: Session, issue_id: int, person: people.Member, now: datetime) -> bool:
    """The person's support, unless they already support the issue (then False)."""
    row = {
        "issue_id": issue_id,
        "person_id": person.id,
        "household_id": person.household_id,
        "created_at": now,
    }
    return insert_new(session, Support.__table__, row, ("issue_id", "person_id")) == 1


# --- raise --------------------------------------------------------------------------------


def scope_choices(session: Session, person: Person) -> list[Scope]:
    require_resident(session, person)
    return scopes.choices_for(session, person)


def similar_open(
    session: Session, scope: Scope, title: str, details: str, person: Person
) -> list[textsense.Match]:
    """Up to three open issues in this scope or above it that look like the same matter, leaving
    out those the person raised or supports already (there is nothing to offer them there)."""
    ids = [s.id for s in scopes.ancestors(session, scope)]
    backed = set(session.scalars(select(Support.issue_id).where(Support.person_id == person.id)))
    return textsense.similar(session, f"{title} {details}", ids, lifecycle.SIMILAR_CANDIDATES, exclude=backed)


PHOTO_MAX = 2_000_000  # bytes: a phone's photo, at most 1280 px across


def keep_photo(data: bytes) -> str:
    """A photo sent while raising an issue, as dialog data keeps it until the issue is published."""
    if len(data) > PHOTO_MAX:
        raise Refused(
            "The photo is too large ({n} KB); at most {max} KB please.",
            n=len(data) // 1000,
            max=PHOTO_MAX // 1000,
        )
    if not data.startswith((b"\xff\xd8", b"\x89PNG")):
        raise Refused("That is not a photo I can keep (JPEG or PNG).")
    return base64.b64encode(data).decode()


def photo_of(session: Session, issue_id: int) -> bytes | None:
    return session.scalar(select(IssuePhoto.data).where(IssuePhoto.issue_id == issue_id))


def raise_issue(
    session: Session,
    author: Person,
    scope_id: int,
    title: str,
    details: str,
    now: datetime,
    photo: str | None = None,
) -> tuple[Issue, Tally]:
    title, details = clean_title(title), clean_text(details)
    allowed = {s.id: s for s in scope_choices(session, author)}
    scope = allowed.get(scope_id)
    if scope is None:
        raise Refused("You can raise an issue only in your building or a scope above it.")
    window = settings.get_int(session, author.community_id, "support_window_days")
    issue = Issue(
        community_id=author.community_id,
        scope_id=scope.id,
        scope=scope,
        author_id=author.id,
        author=author,
        title=title,
        details=details,
        status="raised",
        created_at=now,
        support_deadline=now + timedelta(days=window),
    )
    textsense.index_issue(session, issue)
    lifecycle.record_creation(session, issue, now)
    if photo is not None:
        data = base64.b64decode(photo)
        mime = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
        session.add(IssuePhoto(issue_id=issue.id, data=data, mime=mime, created_at=now))
    audit.append(
        session,
        at=now,
        action="raise",
        community_id=issue.community_id,
        actor_id=author.id,
        issue_id=issue.id,
        detail={"scope": scope.path, "title": title},
    )
    _add_support(session, issue.id, author, now)
    schedule.at(session, "expire", issue.id, issue.support_deadline)
    return issue, _reach_threshold(session, issue, now, author.id)[1]


# --- support and discuss ------------------------------------------------------------------


def support(
    session: Session, person: people.Resident, issue_id: int, now: datetime
) -> tuple[Issue, Tally, bool]:
    """Second an issue; returns it, its tally, and whether this support opened the discussion."""
    issue = get_issue(session, person, issue_id, lock=True)  # supports of one issue count in turn
    _has_home(person.home_path is not None)
    if issue.status not in lifecycle.SUPPORTABLE:
        raise Refused("Issue #{n} is no longer gathering support.", n=issue.id)
    if issue.status == "raised" and now >= issue.support_deadline:
        raise Refused("The support window of issue #{n} has closed.", n=issue.id)
    if not scopes.lives_at(person.home_path, issue.scope):
        raise Refused(
            "Issue #{n} belongs to {scope}; only its residents can support it.",
            n=issue.id,
            scope=issue.scope.path,
        )
    if not _add_support(session, issue.id, person, now):
        raise Refused("You already support issue #{n}.", n=issue.id)
    audit.append(
        session,
        at=now,
        action="support",
        community_id=issue.community_id,
        actor_id=person.id,
        issue_id=issue.id,
    )
    opened, t = _reach_threshold(session, issue, now, person.id)
    return issue, t, opened


def may_discuss(session: Session, person: people.Resident, issue: Issue) -> bool:
    if scopes.lives_at(person.home_path, issue.scope):
        return True
    # only a duty role covers a scope one does not live in: for it, the whole person is loaded
    leader = session.get(Person, person.id) if person.roles else None
    return leader is not None and scopes.leads(session, leader, issue.scope, LEADERS)


class Commented(NamedTuple):
    id: int
    issue_id: int
    text: str  # as stored: cleaned of control characters


# inserted through Core: the ORM's unit of work costs more than the insert
_ADD_COMMENT = Prepared(Comment.__table__.insert().returning(Comment.__table__.c.id))


def comment(session: Session, person: people.Resident, issue_id: int, text: str, now: datetime) -> Commented:
    issue = get_issue(session, person, issue_id)
    text = clean_text(text)
    if issue.status not in lifecycle.COMMENTABLE:
        raise Refused("Comments on issue #{n} are closed.", n=issue.id)
    if not may_discuss(session, person, issue):
        raise Refused(
            "Issue #{n} belongs to {scope}; only its residents can comment.",
            n=issue.id,
            scope=issue.scope.path,
        )
    values = {
        "issue_id": issue.id,
        "person_id": person.id,
        "text": text,
        "created_at": now,
        "state": "visible",
    }
    row = Commented(_ADD_COMMENT.first(session, values).id, issue.id, text)
    audit.append(
        session,
        at=now,
        action="comment",
        community_id=issue.community_id,
        actor_id=person.id,
        issue_id=issue.id,
        detail={"comment": row.id},
    )
    if issue.author_id != person.id:
        outbox.notify(
            session,
            issue.author_id,
            now,
            "New comment C{c} on your issue #{id}: {text}",
            c=row.id,
            id=issue.id,
            text=text,
        )
    return row


def report(session: Session, person: Person, comment_id: int, now: datetime) -> bool:
    """Flag a comment; True when this report hid it for the committee's review."""
    comment, issue = get_comment(session, person, comment_id, lock=True)  # the count that hides it
    require_resident(session, person)
    if comment.person_id == person.id:
        raise Refused("You cannot report your own comment.")
    if comment.state != "visible":
        raise Refused("Comment C{n} is already with the committee or was reviewed.", n=comment.id)
    exists = session.scalar(
        select(CommentReport.id).where(
            CommentReport.comment_id == comment.id, CommentReport.person_id == person.id
        )
    )
    if exists is not None:
        raise Refused("You have already reported comment C{n}.", n=comment.id)
    session.add(CommentReport(comment_id=comment.id, person_id=person.id, created_at=now))
    session.flush()
    count = (
        session.scalar(select(func.count(CommentReport.id)).where(CommentReport.comment_id == comment.id))
        or 0
    )
    audit.append(
        session,
        at=now,
        action="report",
        community_id=issue.community_id,
        actor_id=person.id,
        issue_id=issue.id,
        detail={"comment": comment.id},
    )
    if count < settings.get_int(session, issue.community_id, "report_hide_count"):
        return False
    comment.state = "hidden"
    audit.append(
        session,
        at=now,
        action="hide",
        community_id=issue.community_id,
        issue_id=issue.id,
        detail={"comment": comment.id},
    )
    for member in committee(session, issue.community_id):
        outbox.notify(
            session,
            member,
            now,
            "Comment C{c} on issue #{id} was hidden after {count} reports. It reads: {text}\n/review {c} keep or /review {c} remove.",
            c=comment.id,
            id=issue.id,
            count=count,
            text=comment.text,
        )
    return True


def review(session: Session, person: Person, comment_id: int, decision: str, now: datetime) -> Comment:
    comment, issue = get_comment(session, person, comment_id, lock=True)
    if not scopes.leads(session, person, issue.scope, ("committee",)):
        raise Refused("Only committee members can review comments.")
    if decision not in ("keep", "remove"):
        raise Refused("Say keep or remove: /review C keep or /review C remove.")
    if comment.state != "hidden":
        raise Refused("Comment C{n} is not waiting for review.", n=comment.id)
    comment.state = "kept" if decision == "keep" else "removed"
    audit.append(
        session,
        at=now,
        action="review",
        community_id=issue.community_id,
        actor_id=person.id,
        issue_id=issue.id,
        detail={"comment": comment.id, "decision": decision},
    )
    return comment


def committee(session: Session, community_id: int) -> list[Person]:
    people = session.scalars(
        select(Person).where(
            Person.community_id == community_id,
            Person.moved_out.is_(False),
            Person.roles.contains("committee"),
        )
    )
    return [p for p in people if "committee" in scopes.roles(p)]


# --- moves by the author, leaders and the committee ----------------------------------------


def supporters(session: Session, issue: Issue) -> list[Person]:
    """The author and the supporters still living in the register: who is told, and asked to rate."""
    return list(
        session.scalars(
            select(Person)
            .join(Support, Support.person_id == Person.id)
            .where(Support.issue_id == issue.id, Person.moved_out.is_(False))
            .order_by(Person.id)
        )
    )


def tell(
    session: Session, issue: Issue, now: datetime, msgid: str, skip: int | None, **params: object
) -> None:
    """Notify the author and supporters of an issue (not the person who caused it)."""
    told = [p.id for p in supporters(session, issue) if p.id != skip]
    outbox.notify_all(session, told, now, msgid, id=issue.id, title=issue.title, **params)


def withdraw(session: Session, person: Person, issue_id: int, now: datetime) -> Issue:
    issue = get_issue(session, person, issue_id, lock=True)
    if issue.author_id != person.id:
        raise Refused("Only the author of issue #{n} can withdraw it.", n=issue.id)
    if issue.status == "voting":
        raise Refused("Issue #{n} cannot be withdrawn while its vote is open.", n=issue.id)
    if not lifecycle.can_move(issue, "withdrawn"):
        raise Refused(
            "Issue #{n} is {status} and can no longer be withdrawn.", n=issue.id, status=issue.status
        )
    lifecycle.move(session, issue, "withdrawn", at=now, actor_id=person.id)
    tell(session, issue, now, "Issue #{id} {title} was withdrawn by its author.", skip=person.id)
    return issue


def escalate(session: Session, person: Person, issue_id: int, now: datetime) -> tuple[Issue, Tally]:
    issue = get_issue(session, person, issue_id, lock=True)
    if not scopes.leads(session, person, issue.scope, LEADERS):
        raise Refused(
            "Only the building leader, the grid worker or the committee responsible can escalate issue #{n}.",
            n=issue.id,
        )
    if issue.scope.parent_id is None:
        raise Refused("Issue #{n} is already at the scope of the whole community.", n=issue.id)
    if issue.status not in lifecycle.BEFORE_VOTE:
        raise Refused(
            "Issue #{n} is {status} and can no longer be escalated.", n=issue.id, status=issue.status
        )
    before = issue.scope
    parent = session.get(Scope, before.parent_id)
    assert parent is not None
    issue.scope_id, issue.scope = parent.id, parent
    audit.append(
        session,
        at=now,
        action="escalate",
        community_id=issue.community_id,
        actor_id=person.id,
        issue_id=issue.id,
        detail={"from": before.path, "to": parent.path},
    )
    session.flush()
    tell(
        session,
        issue,
        now,
        "Issue #{id} {title} was escalated to {scope}.",
        skip=person.id,
        scope=parent.path,
    )
    return issue, _reach_threshold(session, issue, now, person.id)[1]


def refer(session: Session, person: Person, issue_id: int, body: str, now: datetime) -> Issue:
    issue = get_issue(session, person, issue_id, lock=True)
    if not scopes.leads(session, person, issue.scope, ("committee",)):
        raise Refused("Only committee members can refer an issue.")
    body = " ".join(body.split())
    if not body:
        raise Refused("Name the body to refer to, e.g. /refer {n} 区住建局.", n=issue.id)
    if len(body) > BODY_MAX:
        raise Refused(
            "The body's name is {n} characters long; at most {max} please.", n=len(body), max=BODY_MAX
        )
    if not lifecycle.can_move(issue, "referred"):
        raise Refused(
            "Issue #{n} is {status} and can no longer be referred.", n=issue.id, status=issue.status
        )
    issue.referred_to = body
    lifecycle.move(session, issue, "referred", at=now, actor_id=person.id, detail={"to": body})
    tell(
        session,
        issue,
        now,
        "Issue #{id} {title} is outside the community's remit and was referred to {body}.",
        skip=person.id,
        body=body,
    )
    return issue


def merge(
    session: Session, person: Person, issue_id: int, target_id: int, now: datetime
) -> tuple[Issue, Issue, int]:
    """Issue N duplicates M: N is merged, its supporters who live in M's scope support M."""
    # both held, in one order (two merges never deadlock), then refused in the order named
    held = {n: session.scalar(_LOCKED_ISSUE, {"id": n}) for n in sorted({issue_id, target_id})}
    issue, target = (_of_community(person, n, held[n]) for n in (issue_id, target_id))
    if not scopes.leads(session, person, issue.scope, ("committee",)):
        raise Refused("Only committee members can merge issues.")
    if issue.id == target.id:
        raise Refused("An issue cannot be merged into itself.")
    if not lifecycle.can_move(issue, "merged"):
        raise Refused("Issue #{n} is {status} and can no longer be merged.", n=issue.id, status=issue.status)
    if target.status not in lifecycle.SUPPORTABLE:
        raise Refused("Issue #{n} is no longer gathering support; merge into an open issue.", n=target.id)
    issue.merged_into_id = target.id
    lifecycle.move(session, issue, "merged", at=now, actor_id=person.id, detail={"into": target.id})
    have = set(session.scalars(select(Support.person_id).where(Support.issue_id == target.id)))
    moved = 0
    for sup in session.scalars(select(Support).where(Support.issue_id == issue.id)).all():
        supporter = session.get(Person, sup.person_id)
        if (
            sup.person_id in have
            or supporter is None
            or not scopes.lives_in(session, supporter, target.scope)
        ):
            continue
        session.add(
            Support(
                issue_id=target.id, person_id=sup.person_id, household_id=sup.household_id, created_at=now
            )
        )
        moved += 1
    session.flush()
    tell(
        session,
        issue,
        now,
        "Issue #{id} {title} was merged into #{into}; your support counts there.",
        skip=person.id,
        into=target.id,
    )
    _reach_threshold(session, target, now, person.id)
    return issue, target, moved


# --- reading ------------------------------------------------------------------------------


def in_scopes_of(session: Session, person: Person) -> ColumnElement[bool] | None:
    """A condition on `Scope` (joined to the issue): the person's scopes, where they live (and
    above) and under their duties; None when they have none."""
    conditions = []
    building = scopes.home(session, person)
    if building is not None:
        conditions.append(Scope.path.in_([s.path for s in scopes.ancestors(session, building)]))
    have = scopes.roles(person)
    if "committee" in have:
        conditions.append(Scope.id == person.community_id)
        conditions.append(Scope.community_id == person.community_id)
    duty = session.get(Scope, person.duty_scope_id)
    if duty is not None and have & {"building_leader", "grid_worker"}:
        conditions.append(scopes.inside(Scope.path, duty.path))
    return or_(*conditions) if conditions else None


def visible_to(session: Session, person: Person, statuses: frozenset[str], limit: int = 30) -> list[Issue]:
    """Issues in the person's scopes."""
    condition = in_scopes_of(session, person)
    if condition is None:
        return []
    return list(
        session.scalars(
            select(Issue)
            .join(Scope, Scope.id == Issue.scope_id)
            .where(Issue.community_id == person.community_id, Issue.status.in_(statuses), condition)
            .order_by(Issue.id.desc())
            .limit(limit)
        )
    )


class Shown(NamedTuple):
    """A visible comment as `/issue` lists it: its number, who wrote it (`people.label`), the text."""

    id: int
    author: str
    text: str


_SHOWN = (
    select(Comment.id, Person.name, Scope.name, Household.room, Comment.text)
    .join(Person, Person.id == Comment.person_id)
    .outerjoin(Household, Household.id == Person.household_id)
    .outerjoin(Scope, Scope.id == Household.building_id)
    .where(Comment.issue_id == bindparam("issue"), Comment.state.in_(("visible", "kept")))
    .order_by(Comment.id)
)


def comments_of(session: Session, issue: Issue) -> list[Shown]:
    """The visible comments with their authors, in one query however many there are."""
    return [
        Shown(cid, people.labelled(name, building, room), text)
        for cid, name, building, room, text in session.execute(_SHOWN, {"issue": issue.id})
    ]


def authored(session: Session, person: Person) -> list[Issue]:
    return list(
        session.scalars(
            select(Issue)
            .where(Issue.author_id == person.id, Issue.status.in_(lifecycle.OPEN))
            .order_by(Issue.id.desc())
            .limit(20)
        )
    )


def supported(session: Session, person: Person) -> list[Issue]:
    return list(
        session.scalars(
            select(Issue)
            .join(Support, Support.issue_id == Issue.id)
            .where(
                Support.person_id == person.id, Issue.author_id != person.id, Issue.status.in_(lifecycle.OPEN)
            )
            .order_by(Issue.id.desc())
            .limit(20)
        )
    )
