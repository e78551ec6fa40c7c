"""Writing due work: each deadline or reminder is a row, written with its cause (flows/due.py runs them)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import DueWork
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


def next_due(session: Session) -> datetime | None:
    return session.scalar(select(func.min(DueWork.due_at)).where(DueWork.fired_at.is_(None)))
