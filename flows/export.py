"""The public record (`yishi export`): every issue of a community, without names of residents."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flows import actions, audit, scopes, votes
from flows.errors import Refused
from storage.models import ActionItem, Comment, Issue, Poll, PollOption, Scope, Support, Transition

CSV_FIELDS = (
    "id", "title", "scope", "status", "major", "supports", "supporting_households",
    "threshold", "comments", "created_at",
)  # fmt: skip


def iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if at else None


def community(session: Session, name: str | None) -> Scope:
    """The community named, or the only one in the database."""
    query = select(Scope).where(Scope.level == "community").order_by(Scope.id)
    found = list(session.scalars(query.where(Scope.name == name) if name else query))
    if not found:
        raise (
            Refused("No community called {name} is in the database.", name=name)
            if name
            else Refused("The database holds no community yet: run yishi import REGISTER.csv first.")
        )
    if len(found) > 1:
        raise Refused(
            "The database holds several communities; choose one with --community: {names}.",
            names=", ".join(s.name for s in found),
        )
    return found[0]


def supporting_households(session: Session, ids: list[int]) -> dict[int, int]:
    """How many households support each of these issues (the threshold counts households)."""
    return dict(
        session.execute(
            select(Support.issue_id, func.count(func.distinct(Support.household_id)))
            .where(Support.issue_id.in_(ids))
            .group_by(Support.issue_id)
        ).all()
    )


def record(session: Session, community_name: str | None, now: datetime) -> dict:
    root = community(session, community_name)
    issues = list(session.scalars(select(Issue).where(Issue.community_id == root.id).order_by(Issue.id)))
    ids = [i.id for i in issues]
    supports = dict(
        session.execute(
            select(Support.issue_id, func.count(Support.id))
            .where(Support.issue_id.in_(ids))
            .group_by(Support.issue_id)
        ).all()
    )
    households = supporting_households(session, ids)
    comments = dict(
        session.execute(
            select(Comment.issue_id, func.count(Comment.id))
            .where(Comment.issue_id.in_(ids), Comment.state.in_(("visible", "kept")))
            .group_by(Comment.issue_id)
        ).all()
    )
    transitions: dict[int, list[dict]] = {}
    for t in session.scalars(select(Transition).where(Transition.issue_id.in_(ids)).order_by(Transition.id)):
        transitions.setdefault(t.issue_id, []).append({"status": t.status, "at": iso(t.at)})
    thresholds: dict[int, int] = {}
    out = []
    for issue in issues:
        if issue.scope_id not in thresholds:
            thresholds[issue.scope_id] = scopes.threshold(session, issue.scope)
        out.append(
            {
                "id": issue.id,
                "title": issue.title,
                "scope": issue.scope.path,
                "status": issue.status,
                "major": issue.major,
                "category": issue.category,
                "supports": supports.get(issue.id, 0),
                "supporting_households": households.get(issue.id, 0),
                "threshold": thresholds[issue.scope_id],
                "comments": comments.get(issue.id, 0),
                "created_at": iso(issue.created_at),
                "merged_into": issue.merged_into_id,
                "referred_to": issue.referred_to,
                "transitions": transitions.get(issue.id, []),
                "polls": [poll_record(session, p) for p in votes.polls_of(session, issue.id)],
                "items": [item_record(i) for i in actions.items_of(session, issue.id)],
                "ratings": dict(
                    zip(
                        ("count", "average"),
                        actions.ratings_of(session, issue.id, issue.rating_round),
                        strict=True,
                    )
                ),
            }
        )
    return {
        "community": root.name,
        "generated_at": iso(now),
        "audit_head": audit.head(session, root.id).hash,
        "issues": out,
    }


def poll_record(session: Session, poll: Poll, options: list[PollOption] | None = None) -> dict:
    """`options`: the poll's, where the caller has read them already (the board reads a page's at once)."""
    hidden = poll.secret and poll.closed_at is None  # a secret poll's count is known only at its close
    counted = votes.running_votes(session, poll) if poll.closed_at is None and not poll.secret else None
    return {
        "id": poll.id,
        "kind": poll.kind,
        "unit": poll.unit,
        "secret": poll.secret,
        "opens_at": iso(poll.opens_at),
        "closes_at": iso(poll.closed_at or poll.closes_at),
        "eligible": poll.eligible,
        "turnout": poll.turnout if poll.closed_at else votes.turnout(session, poll),
        "quorum_met": poll.quorum_met,
        "options": [
            {
                "number": o.number,
                "label": o.label,
                "votes": None if hidden else (counted.get(o.number, 0) if counted is not None else o.votes),
            }
            for o in (options if options is not None else votes.options_of(session, poll))
        ],
        "outcome": poll.outcome,
    }


def item_record(item: ActionItem) -> dict:
    return {
        "id": item.id,
        "title": item.title,
        "owner_role": item.owner.roles,
        "due": iso(item.due_at),
        "progress": item.progress,
        "done_at": iso(item.done_at),
    }


def to_csv(data: dict) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for issue in data["issues"]:
        writer.writerow({k: (str(v).lower() if isinstance(v, bool) else v) for k, v in issue.items()})
    return buf.getvalue()
