"""Messages the bot sends on its own: written with their cause, delivered later, never lost.

`notify` adds a row in the caller's transaction. `deliver_due` claims each due row for one
attempt (a conditional update that sets a lease, so two senders never both take it), sends
it with no transaction open (on SQLite a transaction holds the database's write lock), and
marks it sent, or schedules the next attempt by backoff on the same clock, or gives up for
good. A message is sent twice only if the process died between sending it and marking it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from flows import people
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


class Recipient(NamedTuple):
    """Where a message goes, in plain values: a channel is called with no transaction open."""

    channel: str
    external_id: str
    name: str  # NAME, or NAME@BUILDING-ROOM where two share a name (the console prints it)


class Sender(Protocol):
    """A channel's sending half. A text longer than `max_length` goes as several messages."""

    max_length: int | None

    def send(self, recipient: Recipient, text: str) -> None: ...


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


def split(text: str, limit: int | None) -> list[str]:
    """A text as messages of at most `limit` characters, cut at line ends where possible."""
    parts: list[str] = []
    while limit is not None and len(text) > limit:
        cut = text.rfind("\n", 0, limit + 1)
        cut = limit if cut <= 0 else cut
        parts.append(text[:cut])
        text = text[cut:].lstrip("\n")
    return [part for part in [*parts, text] if part.strip()]


def recipient_of(session: Session, account: Account) -> Recipient:
    person = account.person
    if person is None:
        return Recipient(account.channel, account.external_id, account.external_id)
    name = people.label(session, person) if people.namesakes(session, person) else person.name
    return Recipient(account.channel, account.external_id, name)


class _Claimed(NamedTuple):
    row_id: int
    lease: datetime
    attempts: int
    recipient: Recipient
    parts: list[str]
    done: int  # parts delivered by earlier attempts


_CLAIM = (
    Outbox.__table__.update()
    .where(
        Outbox.__table__.c.id == bindparam("row"),
        Outbox.__table__.c.sent_at.is_(None),
        Outbox.__table__.c.failed_at.is_(None),
        Outbox.__table__.c.next_attempt_at == bindparam("seen"),
    )
    .values(next_attempt_at=bindparam("lease"), attempts=Outbox.__table__.c.attempts + 1)
)


def _claim(
    db: Database, row_id: int, seen_at: datetime, now: datetime, senders: Mapping[str, Sender], render: Render
) -> _Claimed | None:
    """Take the row for one attempt (a lease); its text is rendered once, at the first attempt,
    and kept, so that a retry resumes the same parts where the last attempt stopped."""
    lease = now + LEASE
    with db.transaction() as session:
        if session.execute(_CLAIM, {"row": row_id, "seen": seen_at, "lease": lease}).rowcount != 1:
            return None
        row = session.get(Outbox, row_id)
        assert row is not None
        account = row.account
        if row.rendered is None:
            row.rendered = render(session, account, row.msgid, row.params)
        parts = split(row.rendered, senders[account.channel].max_length)
        return _Claimed(row_id, lease, row.attempts, recipient_of(session, account), parts, row.parts_sent)


def _delivered(db: Database, claimed: _Claimed, parts: int, now: datetime) -> None:
    done = parts == len(claimed.parts)
    with db.transaction() as session:
        session.execute(
            update(Outbox)
            .where(Outbox.id == claimed.row_id, Outbox.sent_at.is_(None))
            .values(parts_sent=parts, **({"sent_at": now} if done else {}))
        )


def _failed(db: Database, claimed: _Claimed, exc: DeliveryFailed, now: datetime) -> None:
    final = exc.permanent or claimed.attempts >= MAX_ATTEMPTS
    with db.transaction() as session:
        session.execute(
            update(Outbox)  # only while the lease is still ours: past it, another sender has the row
            .where(Outbox.id == claimed.row_id, Outbox.next_attempt_at == claimed.lease)
            .values(
                error=str(exc)[:500],
                **({"failed_at": now} if final else {"next_attempt_at": now + backoff(claimed.attempts)}),
            )
        )


def _send(db: Database, claimed: _Claimed, sender: Sender, now: Callable[[], datetime]) -> bool:
    """Each part not yet delivered, recorded as it goes: a process killed mid-message sends again
    only the part in flight. Whether the whole message is now sent."""
    if not claimed.parts:  # nothing to say once rendered: done
        _delivered(db, claimed, 0, now())
    for number in range(claimed.done, len(claimed.parts)):
        try:
            sender.send(claimed.recipient, claimed.parts[number])
        except DeliveryFailed as exc:
            _failed(db, claimed, exc, now())
            return False
        except Exception as exc:  # a fault of ours or the library's: logged, tried again later
            log.exception(
                "outbox row %s: unexpected error sending on %s", claimed.row_id, claimed.recipient.channel
            )
            _failed(db, claimed, DeliveryFailed(type(exc).__name__), now())
            return False
        _delivered(db, claimed, number + 1, now())
    return True


def deliver_due(
    db: Database, now: Callable[[], datetime], senders: Mapping[str, Sender], render: Render
) -> int:
    """Send every due message on the given channels; the number sent. Each claim and each mark
    reads the clock afresh: a long run must not hand out leases that have already run out."""
    with db.transaction() as session:
        due = session.execute(
            select(Outbox.id, Outbox.next_attempt_at)
            .join(Account, Account.id == Outbox.account_id)
            .where(Outbox.sent_at.is_(None), Outbox.failed_at.is_(None), Outbox.next_attempt_at <= now())
            .where(Account.channel.in_(list(senders)))
            .order_by(Outbox.id)
        ).all()
    sent = 0
    for row_id, seen_at in due:
        claimed = _claim(db, row_id, seen_at, now(), senders, render)
        if claimed is not None and _send(db, claimed, senders[claimed.recipient.channel], now):
            sent += 1
    return sent
