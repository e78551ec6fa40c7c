"""Act and follow up (居民办): action items with owners and due times, progress, and the
residents' verdict on the result (a rating of 1–5 from the author and supporters).

Each change that reads the issue's state to decide (a new item moving it to `acting`, the
last item done, the last rating, the verdict at seven days) holds the issue's row first
(`flows.issues`): two such changes take turns, so the move happens once and the verdict
counts every rating given before it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flows import audit, lifecycle, outbox, people, schedule, scopes
from flows import issues as issue_flow
from flows.errors import Refused
from flows.numbers import whole
from flows.when import local, parse_moment
from storage.models import ActionItem, Issue, ItemUpdate, Person, Rating

TASKABLE = ("passed", "acting", "reopened")


def get_item(session: Session, person: Person, item_id: int) -> tuple[ActionItem, Issue]:
    item = session.get(ActionItem, item_id)
    issue = session.get(Issue, item.issue_id) if item else None
    if item is None or issue is None or issue.community_id != person.community_id:
        raise Refused("There is no action item #{n}.", n=item_id)
    return item, issue


def add(
    session: Session,
    person: Person,
    issue_id: int,
    owner_ref: str,
    due_text: str,
    title: str,
    now: datetime,
    tz: str,
) -> ActionItem:
    issue = issue_flow.get_issue(session, person, issue_id, lock=True)
    if not scopes.leads(session, person, issue.scope, ("committee",)):
        raise Refused("Only committee members can assign action items.")
    if issue.status not in TASKABLE:
        raise Refused(
            "Issue #{n} is {status}; action items follow a vote that passed.", n=issue.id, status=issue.status
        )
    owner = people.find(session, owner_ref, issue.community_id)
    due = parse_moment(due_text, now, tz)
    if due <= now:
        raise Refused("The due time {due} has already passed.", due=local(due, tz))
    title = issue_flow.clean_title(title)
    item = ActionItem(
        issue_id=issue.id, owner_id=owner.id, creator_id=person.id, title=title, due_at=due, created_at=now
    )
    session.add(item)
    session.flush()
    if issue.status != "acting":
        lifecycle.move(session, issue, "acting", at=now, actor_id=person.id, detail={"item": item.id})
    if due - schedule.ITEM_REMINDER > now:
        schedule.at(session, "item_due", item.id, due - schedule.ITEM_REMINDER)
    schedule.at(session, "item_overdue", item.id, due + schedule.ESCALATE_AFTER)
    audit.append(
        session, at=now, action="task", community_id=issue.community_id, actor_id=person.id, issue_id=issue.id,
        detail={"item": item.id, "owner": owner.id, "due": due.isoformat()},
    )  # fmt: skip
    outbox.notify(
        session, owner, now, "You own action item #{item} for issue #{id} {title}: {task}, due {due}. /progress {item} PCT TEXT, /done {item}.",
        item=item.id, id=issue.id, title=issue.title, task=title, due=local(due, tz),
    )  # fmt: skip
    issue_flow.tell(
        session,
        issue,
        now,
        "Issue #{id} {title} has a new action item #{item}: {task}.",
        owner.id,
        item=item.id,
        task=title,
    )
    return item


def _owned(session: Session, person: Person, item_id: int) -> tuple[ActionItem, Issue]:
    """The person's item, not done, with its issue held (the last two items done at once: one
    of them moves the issue) and the item read as it is now."""
    item, issue = get_item(session, person, item_id)
    issue = issue_flow.lock(session, issue.id)
    session.refresh(item)
    if item.owner_id != person.id:
        raise Refused("Only the owner of action item #{n} can report on it.", n=item.id)
    if item.done_at is not None:
        raise Refused("Action item #{n} is already done.", n=item.id)
    return item, issue


def progress(
    session: Session, person: Person, item_id: int, pct_text: str, text: str, now: datetime
) -> ActionItem:
    item, issue = _owned(session, person, item_id)
    pct = whole(pct_text.rstrip("%"), digits=3)
    if pct is None or pct > 100:
        raise Refused("{value} is not a percentage from 0 to 100.", value=pct_text)
    item.progress = pct
    text = issue_flow.clean_text(text)
    session.add(ItemUpdate(item_id=item.id, person_id=person.id, progress=item.progress, text=text, at=now))
    audit.append(
        session, at=now, action="progress", community_id=issue.community_id, actor_id=person.id, issue_id=issue.id,
        detail={"item": item.id, "progress": item.progress},
    )  # fmt: skip
    issue_flow.tell(
        session,
        issue,
        now,
        "Action item #{item} of issue #{id} {title}: progress {pct}%, {text}",
        person.id,
        item=item.id,
        pct=item.progress,
        text=text,
    )
    outbox.announce(
        session, issue.scope, now, "Action item #{item} of issue #{id} {title}: progress {pct}%, {text}",
        item=item.id, id=issue.id, title=issue.title, pct=item.progress, text=text,
    )  # fmt: skip
    return item


def done(session: Session, person: Person, item_id: int, now: datetime) -> tuple[ActionItem, Issue]:
    item, issue = _owned(session, person, item_id)
    item.progress, item.done_at = 100, now
    audit.append(
        session, at=now, action="done", community_id=issue.community_id, actor_id=person.id, issue_id=issue.id,
        detail={"item": item.id},
    )  # fmt: skip
    session.flush()
    outbox.announce(
        session, issue.scope, now, "Action item #{item} of issue #{id} {title} is done.",
        item=item.id, id=issue.id, title=issue.title,
    )  # fmt: skip
    left = session.scalar(
        select(func.count(ActionItem.id)).where(ActionItem.issue_id == issue.id, ActionItem.done_at.is_(None))
    )
    if left:
        issue_flow.tell(
            session,
            issue,
            now,
            "Action item #{item} of issue #{id} {title} is done.",
            person.id,
            item=item.id,
        )
        return item, issue
    issue.rating_round += 1
    issue.done_at = now
    lifecycle.move(session, issue, "done", at=now, actor_id=person.id)
    key = f"verdict:{issue.id}:{issue.rating_round}"
    schedule.at(session, "verdict", issue.id, now + schedule.VERDICT_AFTER, key=key)
    outbox.notify_all(
        session, [p.id for p in issue_flow.supporters(session, issue)], now,
        "Every action item of issue #{id} {title} is done. Is the matter settled? Rate it: /rate {id} 1-5 (5 best).",
        id=issue.id, title=issue.title,
    )  # fmt: skip
    return item, issue


def rate(
    session: Session, person: Person, issue_id: int, score_text: str, why: str, now: datetime
) -> tuple[Rating, str | None]:
    """A rating of the latest round; the verdict when it was the last one asked for."""
    issue = issue_flow.get_issue(session, person, issue_id, lock=True)
    if person.id not in {p.id for p in issue_flow.supporters(session, issue)}:
        raise Refused("Only the author and the supporters of issue #{n} rate it.", n=issue.id)
    if issue.status != "done":
        raise Refused(
            "Issue #{n} is {status}; ratings are asked for when its work is done.",
            n=issue.id,
            status=issue.status,
        )
    score = whole(score_text, digits=1)
    if score is None or not 1 <= score <= 5:
        raise Refused("Rate from 1 (not settled at all) to 5 (fully settled).")
    why = " ".join(why.split())[: issue_flow.TEXT_MAX] or None
    rating = session.scalar(
        select(Rating).where(
            Rating.issue_id == issue.id, Rating.round == issue.rating_round, Rating.person_id == person.id
        )
    )
    if rating is None:
        rating = Rating(
            issue_id=issue.id,
            round=issue.rating_round,
            person_id=person.id,
            score=score,
            why=why,
            at=now,
        )
        session.add(rating)
    else:
        rating.score, rating.why, rating.at = score, why, now
    audit.append(
        session, at=now, action="rate", community_id=issue.community_id, actor_id=person.id, issue_id=issue.id,
        detail={"score": rating.score, "round": issue.rating_round},
    )  # fmt: skip
    session.flush()
    given = session.scalar(
        select(func.count(Rating.id)).where(Rating.issue_id == issue.id, Rating.round == issue.rating_round)
    )
    if given is not None and given >= len(issue_flow.supporters(session, issue)):
        return rating, verdict(session, issue, now)
    return rating, None


def verdict(session: Session, issue: Issue, now: datetime) -> str:
    """`reopened` when 2 × (ratings of 1–2) > ratings, otherwise `closed`."""
    scores = list(
        session.scalars(
            select(Rating.score).where(Rating.issue_id == issue.id, Rating.round == issue.rating_round)
        )
    )
    low = sum(1 for s in scores if s <= 2)
    status = "reopened" if 2 * low > len(scores) else "closed"
    lifecycle.move(session, issue, status, at=now, actor_id=None, detail={"ratings": len(scores), "low": low})
    issue_flow.tell(
        session, issue, now, "The residents' verdict on issue #{id} {title}: {status}.", None, status=status
    )
    return status


def ratings_of(session: Session, issue_id: int, round_: int) -> tuple[int, float | None]:
    count, average = session.execute(
        select(func.count(Rating.id), func.avg(Rating.score)).where(
            Rating.issue_id == issue_id, Rating.round == round_
        )
    ).one()
    return count, (round(float(average), 2) if average is not None else None)


def items_of(session: Session, issue_id: int) -> list[ActionItem]:
    return list(
        session.scalars(select(ActionItem).where(ActionItem.issue_id == issue_id).order_by(ActionItem.id))
    )


def owns_any(session: Session, person: Person) -> bool:
    return session.scalar(select(ActionItem.id).where(ActionItem.owner_id == person.id).limit(1)) is not None


def owned_by(session: Session, person: Person) -> list[ActionItem]:
    return list(
        session.scalars(
            select(ActionItem)
            .where(ActionItem.owner_id == person.id, ActionItem.done_at.is_(None))
            .order_by(ActionItem.due_at)
        )
    )
