"""Messages the bot sends on its own: written with their cause, delivered later, never lost.

`notify` adds a row in the caller's transaction. `deliver_due` claims each due row (a
conditional update, so two senders never both take it), sends it, and marks it sent, or
schedules the next attempt by backoff on the same clock, or gives up for good.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from storage.db import Database
from storage.models import Account, Outbox, Person

log = logging.getLogger("yishi.outbox")

MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=5)


class DeliveryFailed(Exception):
    """A channel could not deliver; `permanent` when trying again cannot help (a blocked bot)."""

    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


Send = Callable[[Account, str], None]
Render = Callable[[Session, Account, str, dict], str]


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min … doubling, at most 6 h."""
    return min(timedelta(seconds=30 * 2 ** max(attempts - 1, 0)), timedelta(hours=6))


_LATEST_ACCOUNT = (
    select(Account).where(Account.person_id == bindparam("person")).order_by(Account.id.desc()).limit(1)
)


_QUEUE = Outbox.__table__.insert()
_LATEST_ACCOUNT_ID = (
    select(Account.id).where(Account.person_id == bindparam("person")).order_by(Account.id.desc()).limit(1)
)


def account_of(session: Session, person: Person) -> Account | None:
    """The account a person used last to bind: where the bot reaches them."""
    return session.scalar(_LATEST_ACCOUNT, {"person": person.id})


def notify(session: Session, person: Person | int, at: datetime, msgid: str, **params: object) -> bool:
    """Queue a message for a person (or a person's id); False when they have no chat account,
    which is logged: a reminder for someone the bot cannot reach is skipped, not lost silently."""
    person_id = person if isinstance(person, int) else person.id
    conn = session.connection()
    account_id = conn.execute(_LATEST_ACCOUNT_ID, {"person": person_id}).scalar()
    if account_id is None:
        log.info("person %s has no chat account: %r not queued", person_id, msgid)
        return False
    row = {
        "account_id": account_id,
        "msgid": msgid,
        "params": params,
        "created_at": at,
        "next_attempt_at": at,
    }
    conn.execute(_QUEUE, row)
    return True


def _claim(db: Database, row_id: int, seen_at: datetime, now: datetime) -> bool:
    with db.transaction() as session:
        won = session.execute(
            update(Outbox)
            .where(Outbox.id == row_id, Outbox.sent_at.is_(None), Outbox.next_attempt_at == seen_at)
            .values(next_attempt_at=now + LEASE)
        ).rowcount
    return won == 1


def deliver_due(db: Database, now: datetime, senders: Mapping[str, Send], render: Render) -> int:
    """Send every due message on the given channels; the number sent."""
    with db.transaction() as session:
        due = session.execute(
            select(Outbox.id, Outbox.next_attempt_at)
            .join(Account, Account.id == Outbox.account_id)
            .where(Outbox.sent_at.is_(None), Outbox.failed_at.is_(None), Outbox.next_attempt_at <= now)
            .where(Account.channel.in_(list(senders)))
            .order_by(Outbox.id)
        ).all()
    sent = 0
    for row_id, seen_at in due:
        if not _claim(db, row_id, seen_at, now):
            continue
        with db.transaction() as session:
            row = session.get(Outbox, row_id)
            assert row is not None
            account = session.get(Account, row.account_id)
            assert account is not None
            row.attempts += 1
            try:
                senders[account.channel](account, render(session, account, row.msgid, row.params))
            except DeliveryFailed as exc:
                row.error = str(exc)[:500]
                if exc.permanent or row.attempts >= MAX_ATTEMPTS:
                    row.failed_at = now
                else:
                    row.next_attempt_at = now + backoff(row.attempts)
            else:
                row.sent_at = now
                sent += 1
    return sent
