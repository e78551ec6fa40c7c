"""Writing due work: each deadline or reminder is a row, written with its cause (flows/due.py runs them)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import Select, bindparam, func, select, true
from sqlalchemy.orm import Session

from storage.db import wake_at
from storage.models import Account, DueWork, Group, Outbox
from storage.rows import insert_new

VOTE_REMINDERS = (timedelta(hours=24), timedelta(hours=2))
VERDICT_AFTER = timedelta(days=7)
ESCALATE_AFTER = timedelta(days=7)
ITEM_REMINDER = timedelta(days=1)


def at(session: Session, kind: str, subject_id: int, due_at: datetime, key: str | None = None) -> None:
    """A row of due work; the same key twice keeps the first, also when two transactions (two
    clocks planning the same digest) write it at once."""
    row = {"key": key or f"{kind}:{subject_id}", "kind": kind, "subject_id": subject_id, "due_at": due_at}
    insert_new(session, DueWork.__table__, row, ("key",))
    wake_at(session, "work", due_at)


def _next_due(after: bool) -> Select:
    work = select(func.min(DueWork.due_at)).where(DueWork.fired_at.is_(None)).scalar_subquery()
    served = bindparam("served", expanding=True)
    to_group = select(Group.id).where(Group.id == Outbox.group_id, Group.channel.in_(served))
    to_person = select(Account.id).where(
        Account.person_id == Outbox.person_id, Account.channel.in_(served), Account.blocked_at.is_(None)
    )
    message = (
        select(func.min(Outbox.next_attempt_at))
        .where(Outbox.sent_at.is_(None), Outbox.failed_at.is_(None), Outbox.held_at.is_(None))
        .where(to_group.exists() | to_person.exists())
        .where(Outbox.next_attempt_at > bindparam("after") if after else true())
        .scalar_subquery()
    )
    return select(work, message)


# built once (a statement built afresh costs more than the query): with and without `after`
_NEXT_DUE = {after: _next_due(after) for after in (False, True)}


def next_due(
    session: Session, channels: Collection[str] = (), after: datetime | None = None
) -> tuple[datetime | None, datetime | None]:
    """When something is next due: (a row of due work, a message that may go on one of `channels`:
    to a group on one of them, or to a person with an account there). `after`: only messages due
    later (those due by then were just looked at by a delivery, which says when what it set aside
    may go)."""
    params = {"served": sorted(channels), "after": after}
    found = session.connection().execute(_NEXT_DUE[after is not None], params).one()
    return found[0], found[1]
