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


def utf16_units(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units): an emoji outside the BMP counts two."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _fitting(text: str, limit: int) -> int:
    """How many of `text`'s first characters fit in `limit` units (at least one)."""
    units = 0
    for index, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return max(index, 1)
    return len(text)


def split(text: str, limit: int | None) -> list[str]:
    """A text as messages of at most `limit` UTF-16 units, cut at line ends where possible;
    parts with nothing to say are left out."""
    assert limit is None or limit >= 2, "a part must hold any one character"
    text = text.replace("\r\n", "\n")
    parts: list[str] = []
    while limit is not None and utf16_units(text) > limit:
        end = _fitting(text, limit)
        cut = text.rfind("\n", 0, end + 1)
        cut = end if cut <= 0 else cut
        parts.append(text[:cut])
        text = text[cut:].lstrip("\n")
    return [part for part in [*parts, text] if part.strip()]


def recipient_of(session: Session, account: Account) -> Recipient:
    person = account.person
    if person is None:
        return Recipient(account.channel, account.external_id, account.external_id)
    name = people.label(session, person) if people.namesakes(session, person) else person.name
    return Recipient(account.channel, account.external_id, name)


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


class Attempt:
    """One attempt at one message, under a lease: the row is ours while `next_attempt_at` holds
    our lease, which is renewed with each part delivered. Every write checks it, so a sender that
    overran its lease stops instead of sending alongside the one that took the row over."""

    def __init__(self, db: Database, row_id: int, now: Callable[[], datetime]) -> None:
        self.db, self.row_id, self.now = db, row_id, now
        self.lease = now() + LEASE
        self.attempts = 0

    def claim(self, seen_at: datetime) -> bool:
        with self.db.transaction() as session:
            won = session.execute(_CLAIM, {"row": self.row_id, "seen": seen_at, "lease": self.lease}).rowcount
            if won == 1:
                self.attempts = session.scalar(select(Outbox.attempts).where(Outbox.id == self.row_id)) or 1
        return won == 1

    def prepare(self, senders: Mapping[str, Sender], render: Render) -> tuple[Recipient, list[str], int]:
        """Who, the parts, and how many went out before. The text is rendered once, at the first
        attempt, and kept: a retry sends the same words, resuming where the last one stopped."""
        with self.db.transaction() as session:
            row = session.get(Outbox, self.row_id)
            assert row is not None
            account = row.account
            if row.rendered is None:
                row.rendered = render(session, account, row.msgid, row.params)
            parts = split(row.rendered, senders[account.channel].max_length)
            return recipient_of(session, account), parts, row.parts_sent

    def delivered(self, parts_sent: int, done: bool) -> bool:
        """Record progress and renew the lease; False if the lease was lost (stop sending)."""
        now = self.now()
        renewed = now + LEASE
        with self.db.transaction() as session:
            won = session.execute(
                update(Outbox)
                .where(Outbox.id == self.row_id, Outbox.next_attempt_at == self.lease)
                .values(parts_sent=parts_sent, next_attempt_at=renewed, **({"sent_at": now} if done else {}))
            ).rowcount
        self.lease = renewed
        return won == 1

    def failed(self, exc: DeliveryFailed) -> None:
        now = self.now()
        final = exc.permanent or self.attempts >= MAX_ATTEMPTS
        with self.db.transaction() as session:
            session.execute(
                update(Outbox)
                .where(Outbox.id == self.row_id, Outbox.next_attempt_at == self.lease)
                .values(
                    error=str(exc)[:500],
                    **({"failed_at": now} if final else {"next_attempt_at": now + backoff(self.attempts)}),
                )
            )

    def run(self, senders: Mapping[str, Sender], render: Render) -> bool:
        """Render, then send each part not yet delivered, recording each as it goes: a process
        killed mid-message sends again only the part in flight. Whether the message is now sent.
        A fault of ours (a message that cannot be rendered, a channel's bug) is logged and tried
        again by backoff like a failed delivery, and never holds up the messages after it."""
        try:
            recipient, parts, done = self.prepare(senders, render)
            sender = senders[recipient.channel]
            if done >= len(parts):  # nothing (more) to say
                return self.delivered(len(parts), done=True)
            for number in range(done, len(parts)):
                sender.send(recipient, parts[number])
                if not self.delivered(number + 1, done=number + 1 == len(parts)):
                    return False
            return True
        except DeliveryFailed as exc:
            self.failed(exc)
        except Exception as exc:
            log.exception("outbox row %s: unexpected error", self.row_id)
            self.failed(DeliveryFailed(type(exc).__name__))
        return False


def deliver_due(
    db: Database,
    now: Callable[[], datetime],
    senders: Mapping[str, Sender],
    render: Render,
    stopping: Callable[[], bool] = lambda: False,
) -> int:
    """Send every due message on the given channels, until `stopping` says so; the number sent.
    Each claim and mark reads the clock afresh: a long run hands out no lease already run out."""
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
        if stopping():
            break
        attempt = Attempt(db, row_id, now)
        try:
            if attempt.claim(seen_at) and attempt.run(senders, render):
                sent += 1
        except Exception:  # the database failing us: the row is tried again once its lease ends
            log.exception("outbox row %s: could not be claimed or recorded", row_id)
    return sent
