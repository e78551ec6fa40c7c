"""The public board: what anyone may read of a community, as the public record (`yishi export`)
gives it. No resident's name, phone, room or invite code; a secret poll's counts only after its
close; the texts residents wrote to their neighbours (an issue's details, its comments) only where
the community's `public_comments` setting is on. Read in a reading transaction (`Database.reading`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flows import audit, counting, export, scopes, settings, votes
from locales import N_
from storage.models import (
    ActionItem,
    Comment,
    Issue,
    IssuePhoto,
    ItemUpdate,
    Poll,
    PollOption,
    Rating,
    Scope,
    Setting,
    Transition,
)

# the board's stages, in the order shown, and the statuses in each
STAGES: dict[str, tuple[str, ...]] = {
    "raised": ("raised",),
    "discussing": ("discussing",),
    "voting": ("voting",),
    "acting": ("passed", "acting", "reopened"),
    "done": ("done", "closed"),
    "ended": ("rejected", "no_quorum", "expired", "withdrawn", "merged", "referred"),
}
STAGE_OF = {status: stage for stage, statuses in STAGES.items() for status in statuses}
STAGE_NAMES = {
    "raised": N_("Gathering support"),
    "discussing": N_("In discussion"),
    "voting": N_("Voting"),
    "acting": N_("Being carried out"),
    "done": N_("Done"),
    "ended": N_("Ended"),
}
# how an issue's status reads on the board (an ended one says how it ended)
STATUS_LABELS = {
    "raised": N_("Gathering support"),
    "discussing": N_("In discussion"),
    "voting": N_("Voting"),
    "passed": N_("Passed, to be carried out"),
    "acting": N_("Being carried out"),
    "reopened": N_("Reopened"),
    "done": N_("Done, awaiting ratings"),
    "closed": N_("Done"),
    "rejected": N_("Rejected by the vote"),
    "no_quorum": N_("Not enough votes (no quorum)"),
    "expired": N_("Not enough support in time"),
    "withdrawn": N_("Withdrawn by its author"),
    "merged": N_("Merged into #{n}"),
    "referred": N_("Referred to {body}"),
}
OUTCOME_LABELS = {  # what a closed vote decided
    "passed": N_("Passed"),
    "rejected": N_("Rejected"),
    "no_quorum": N_("Not valid: too few took part"),
}
ROLE_NAMES = {  # the most senior first: an owner is shown by it
    "staff": N_("community staff"),
    "committee": N_("committee member"),
    "grid_worker": N_("grid worker"),
    "building_leader": N_("building leader"),
    "resident": N_("resident"),
}
PER_PAGE = 20


# --- communities and their addresses -------------------------------------------------------------


def slug(session: Session, community_id: int) -> str:
    """The community's address on the board: its `slug` setting, else its number."""
    return str(settings.get(session, community_id, "slug")) or str(community_id)


def issue_path(slug: str, issue_id: int) -> str:
    """An issue's page on the board, under the community's address."""
    return f"/c/{slug}/issues/{issue_id}"


def find(session: Session, address: str) -> Scope | None:
    """The community at this address: its slug, or its number (which keeps working once a slug is
    set, so that links given out before stay good)."""
    community_id = session.scalar(
        select(Setting.community_id).where(Setting.key == "slug", Setting.value == address)
    )
    if community_id is None and address.isascii() and address.isdecimal() and len(address) <= 9:
        community_id = int(address)
    community = session.get(Scope, community_id) if community_id is not None else None
    return community if community is not None and community.level == "community" else None


@dataclass(frozen=True)
class Community:
    name: str
    slug: str
    issues: int


def communities(session: Session) -> list[Community]:
    counts = dict(
        session.execute(select(Issue.community_id, func.count(Issue.id)).group_by(Issue.community_id)).all()
    )
    return [
        Community(c.name, slug(session, c.id), counts.get(c.id, 0))
        for c in session.scalars(select(Scope).where(Scope.level == "community").order_by(Scope.id))
    ]


def scopes_of(session: Session, community: Scope) -> list[Scope]:
    """Its areas, grids and buildings, in the order of their paths (for the filter)."""
    return list(
        session.scalars(
            select(Scope)
            .where(Scope.community_id == community.id, Scope.level != "community")
            .order_by(Scope.path)
        )
    )


# --- an issue as the board shows it --------------------------------------------------------------


@dataclass
class Card:
    """One issue on the board: where it stands, its support, its last vote, its work, its ratings."""

    id: int
    title: str
    scope: str  # the scope's name
    scope_path: str
    status: str
    stage: str
    created_at: datetime
    households: int  # supporting households
    threshold: int
    major: bool
    merged_into: int | None
    referred_to: str | None
    poll: dict | None  # the last poll, as the public record gives it (`export.poll_record`) and more
    items: list[dict]
    ratings: tuple[int, float | None]

    @property
    def support_share(self) -> float:
        return min(1.0, self.households / self.threshold) if self.threshold else 1.0


def _poll(session: Session, poll: Poll, options: list[PollOption]) -> dict:
    """The public record of a poll, with what the board adds: adopted choices (after the close),
    whether it was a major matter and the rule it was counted by."""
    record = export.poll_record(session, poll, options)
    adopted = {o.number for o in options if o.adopted} if poll.closed_at else set()
    quorum, passing = counting.applicable(poll.rules, poll.major)
    record |= {
        "major": poll.major,
        "quorum_rule": quorum,
        "pass_rule": passing,
        "closed": poll.closed_at is not None,
        "closed_at": poll.closed_at,
        "closes": poll.closes_at,
    }
    for option in record["options"]:
        option["adopted"] = option["number"] in adopted
    return record


def _polls(session: Session, polls: list[Poll]) -> dict[int, dict]:
    """The records of these polls, by id, their options read at once."""
    options: dict[int, list[PollOption]] = {p.id: [] for p in polls}
    found = (
        select(PollOption)
        .where(PollOption.poll_id.in_(list(options)))
        .order_by(PollOption.poll_id, PollOption.number)
    )
    for option in session.scalars(found):
        options[option.poll_id].append(option)
    return {p.id: _poll(session, p, options[p.id]) for p in polls}


def _cards(session: Session, issues: list[Issue]) -> list[Card]:
    ids = [i.id for i in issues]
    households = export.supporting_households(session, ids)
    last_poll: dict[int, Poll] = {}
    for poll in session.scalars(select(Poll).where(Poll.issue_id.in_(ids)).order_by(Poll.id)):
        last_poll[poll.issue_id] = poll
    polls = _polls(session, list(last_poll.values()))
    ratings = {
        (issue_id, round_): (count, round(float(average), 2) if average is not None else None)
        for issue_id, round_, count, average in session.execute(
            select(Rating.issue_id, Rating.round, func.count(Rating.id), func.avg(Rating.score))
            .where(Rating.issue_id.in_(ids))
            .group_by(Rating.issue_id, Rating.round)
        )
    }
    items: dict[int, list[dict]] = {}
    for item in session.scalars(
        select(ActionItem).where(ActionItem.issue_id.in_(ids)).order_by(ActionItem.id)
    ):
        items.setdefault(item.issue_id, []).append(_item(item))
    thresholds: dict[int, int] = {}
    cards = []
    for issue in issues:
        if issue.scope_id not in thresholds:
            thresholds[issue.scope_id] = scopes.threshold(session, issue.scope)
        poll = last_poll.get(issue.id)
        cards.append(
            Card(
                id=issue.id, title=issue.title, scope=issue.scope.name, scope_path=issue.scope.path,
                status=issue.status, stage=STAGE_OF[issue.status], created_at=issue.created_at,
                households=households.get(issue.id, 0), threshold=thresholds[issue.scope_id], major=issue.major,
                merged_into=issue.merged_into_id, referred_to=issue.referred_to,
                poll=polls[poll.id] if poll is not None else None, items=items.get(issue.id, []),
                ratings=ratings.get((issue.id, issue.rating_round), (0, None)),
            )
        )  # fmt: skip
    return cards


def _item(item: ActionItem) -> dict:
    roles = set(item.owner.roles.split("|"))
    return {
        "id": item.id,
        "title": item.title,
        "owner_role": next(
            (name for role, name in ROLE_NAMES.items() if role in roles), ROLE_NAMES["resident"]
        ),
        "due": item.due_at,
        "progress": item.progress,
        "done_at": item.done_at,
        "updates": [],
    }


@dataclass
class Page:
    cards: list[Card]
    total: int
    number: int
    pages: int
    counts: dict[str, int]  # issues in each stage (within the scope chosen)


def page(session: Session, community: Scope, stage: str | None, scope: Scope | None, number: int) -> Page:
    """The board's `number`-th page (from 1), newest first; `stage` and `scope` filter (a scope
    takes in the scopes inside it)."""
    where = [Issue.community_id == community.id]
    if scope is not None:
        inside = select(Scope.id).where(
            (Scope.id == scope.id) | Scope.path.startswith(scope.path + "/", autoescape=True)
        )
        where.append(Issue.scope_id.in_(inside))
    by_status = dict(
        session.execute(select(Issue.status, func.count(Issue.id)).where(*where).group_by(Issue.status)).all()
    )
    counts = {s: sum(by_status.get(status, 0) for status in statuses) for s, statuses in STAGES.items()}
    if stage is not None:
        where.append(Issue.status.in_(STAGES[stage]))
    total = counts[stage] if stage is not None else sum(counts.values())
    pages = max(1, -(-total // PER_PAGE))
    number = min(max(number, 1), pages)
    issues = list(
        session.scalars(
            select(Issue)
            .where(*where)
            .order_by(Issue.id.desc())
            .limit(PER_PAGE)
            .offset((number - 1) * PER_PAGE)
        )
    )
    return Page(_cards(session, issues), total, number, pages, counts)


@dataclass
class Full:
    """One issue's page: its card, every transition, every poll, its items with their updates, and
    what residents wrote, where the community shows it."""

    card: Card
    transitions: list[tuple[str, datetime]]
    polls: list[dict]
    items: list[dict]
    comments: int  # visible comments
    comment_texts: list[tuple[str, datetime]] | None  # None: not shown (`public_comments` off)
    details: str | None
    photo: bool

    @property
    def decided(self) -> dict | None:
        """The vote that decided the issue, for its notice: its last vote, once closed (a vote
        running again after one that failed has decided nothing yet)."""
        return self.polls[-1] if self.polls and self.polls[-1]["closed"] else None


def issue(session: Session, community: Scope, issue_id: int) -> Full | None:
    found = session.get(Issue, issue_id)
    if found is None or found.community_id != community.id:
        return None
    card = _cards(session, [found])[0]
    items = card.items
    updates = session.execute(
        select(ItemUpdate.item_id, ItemUpdate.progress, ItemUpdate.text, ItemUpdate.at)
        .where(ItemUpdate.item_id.in_([i["id"] for i in items]))
        .order_by(ItemUpdate.id)
    ).all()
    public = settings.get(session, community.id, "public_comments") == "on"
    for item in items:  # an owner's report is free text, as a comment is: its words only where shown
        item["updates"] = [
            (u.progress, u.text if public else "", u.at) for u in updates if u.item_id == item["id"]
        ]
    visible = Comment.state.in_(("visible", "kept"))
    texts = None
    if public:
        texts = [
            (c.text, c.created_at)
            for c in session.execute(
                select(Comment.text, Comment.created_at)
                .where(Comment.issue_id == found.id, visible)
                .order_by(Comment.id)
            )
        ]
    return Full(
        card=card,
        transitions=[
            (t.status, t.at)
            for t in session.execute(
                select(Transition.status, Transition.at)
                .where(Transition.issue_id == found.id)
                .order_by(Transition.id)
            )
        ],
        polls=list(_polls(session, votes.polls_of(session, found.id)).values()),
        items=items,
        comments=session.scalar(select(func.count(Comment.id)).where(Comment.issue_id == found.id, visible))
        or 0,
        comment_texts=texts,
        details=found.details if public else None,
        photo=session.get(IssuePhoto, found.id) is not None,
    )


def photo(session: Session, community: Scope, issue_id: int) -> tuple[bytes, str] | None:
    """The issue's photo and its type, where it has one."""
    found = session.get(Issue, issue_id)
    if found is None or found.community_id != community.id:
        return None
    shown = session.get(IssuePhoto, issue_id)
    return (shown.data, shown.mime) if shown is not None else None


# --- the notice (公示) of a decided issue -----------------------------------------------------------


@dataclass
class Notice:
    full: Full
    poll: dict  # the vote that decided it
    closing: audit.Found | None  # the audit row that recorded its close
    closing_hash: str | None


def notice(session: Session, community: Scope, issue_id: int) -> Notice | None:
    """The notice of an issue whose vote has closed (its last closed vote); None where none has."""
    full = issue(session, community, issue_id)
    if full is None:
        return None
    poll = full.decided
    if poll is None:
        return None
    row = audit.closing_row(session, issue_id, poll["id"])
    return Notice(full, poll, row[0] if row else None, row[1] if row else None)
