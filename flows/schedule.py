"""Writing due work: each deadline or reminder is a row, written with its cause (flows/due.py runs them)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flows import outbox
from storage.db import wake_at
from storage.models import DueWork, Outbox
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


def next_due(session: Session, channels: Collection[str] = ()) -> tuple[datetime | None, datetime | None]:
    """When something is next due: (a row of due work, a message to send on one of `channels`)."""
    work = select(func.min(DueWork.due_at)).where(DueWork.fired_at.is_(None)).scalar_subquery()
    message = (
        select(func.min(Outbox.next_attempt_at))
        .where(*outbox.WAITING, outbox.CHANNEL_OF.in_(list(channels)))
        .scalar_subquery()
    )
    found = session.execute(select(work, message)).one()
    return found[0], found[1]
