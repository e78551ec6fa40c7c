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

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.orm import Session, aliased

from flows import people
from storage.db import Database, wake_at
from storage.models import Account, Household, Outbox, Person, Scope

log = logging.getLogger("yishi.outbox")

MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=5)


class DeliveryFailed(Exception):
    """A channel could not deliver; `permanent` when trying again cannot help (a blocked bot)."""

    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


class Recipient(NamedTuple):
    """Who a message goes to, in plain values read with its row (a channel is called with no
    transaction open): where, the name the console prints, and the reader's languages."""

    channel: str
    external_id: str
    name: str  # NAME, or NAME@BUILDING-ROOM where two share a name (the console prints it)
    person_id: int | None = None
    person_locale: str | None = None
    account_locale: str | None = None


class Sender(Protocol):
    """A channel's sending half. A text longer than `max_length` goes as several messages."""

    max_length: int | None

    def send(self, recipient: Recipient, text: str) -> None: ...


Render = Callable[[Session, Recipient, str, dict], str]


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
    wake_at(session, "message", at)
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


_NAMESAKE = aliased(Person)
# a claimed row with its reader, in one query: the account, its person (if still living here) and
# the person's home, named in full where someone else in the community has the same name
_ROW = (
    select(
        Outbox.msgid, Outbox.params, Outbox.rendered, Outbox.parts_sent, Outbox.attempts,
        Account.channel, Account.external_id, Account.locale,
        Person.id, Person.name, Person.locale, Scope.name, Household.room,
        exists().where(
            _NAMESAKE.community_id == Person.community_id, _NAMESAKE.name == Person.name,
            _NAMESAKE.id != Person.id, _NAMESAKE.moved_out.is_(False),
        ),
    )
    .join(Account, Account.id == Outbox.account_id)
    .outerjoin(Person, (Person.id == Account.person_id) & Person.moved_out.is_(False))
    .outerjoin(Household, Household.id == Person.household_id)
    .outerjoin(Scope, Scope.id == Household.building_id)
    .where(Outbox.id == bindparam("row"))
)  # fmt: skip
_RENDERED = Outbox.__table__.update().where(Outbox.__table__.c.id == bindparam("row"))


def _recipient(
    channel: str, external_id: str, account_locale: str | None, person_id: int | None, name: str | None,
    person_locale: str | None, building: str | None, room: str | None, namesake: bool,
) -> Recipient:  # fmt: skip
    if person_id is None or name is None:
        return Recipient(channel, external_id, external_id, None, None, account_locale)
    shown = people.labelled(name, building, room) if namesake else name
    return Recipient(channel, external_id, shown, person_id, person_locale, account_locale)


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
        self.recipient: Recipient | None = None
        self.parts: list[str] = []
        self.done = 0  # parts delivered by earlier attempts

    def claim(self, seen_at: datetime, senders: Mapping[str, Sender], render: Render) -> bool:
        """The row, if it is still as it was seen (no other sender took it), leased for this attempt,
        with who it goes to and its parts, in one transaction. The text is rendered once, at the
        first attempt, and kept: a retry sends the same words, resuming where the last one stopped."""
        with self.db.transaction() as session:
            claimed = session.execute(_CLAIM, {"row": self.row_id, "seen": seen_at, "lease": self.lease})
            if claimed.rowcount != 1:
                return False
            msgid, params, rendered, parts_sent, self.attempts, *reader = session.execute(
                _ROW, {"row": self.row_id}
            ).one()
            self.recipient = _recipient(*reader)
            try:
                with session.begin_nested():
                    if rendered is None:
                        rendered = render(session, self.recipient, msgid, params)
                        session.execute(_RENDERED, {"row": self.row_id, "rendered": rendered})
            except Exception as exc:  # a fault of ours: the claim stands, and the attempt fails below
                failure: Exception | None = exc
            else:
                failure = None
                self.parts = split(rendered, senders[self.recipient.channel].max_length)
                self.done = parts_sent
        if failure is not None:
            log.error("outbox row %s: unexpected error", self.row_id, exc_info=failure)
            self.failed(DeliveryFailed(type(failure).__name__))
            return False
        return True

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

    def run(self, senders: Mapping[str, Sender]) -> bool:
        """Send each part not yet delivered, recording each as it goes: a process killed mid-message
        sends again only the part in flight. Whether the message is now sent. A fault of ours (a
        channel's bug) is logged and tried again by backoff like a failed delivery, and never holds
        up the messages after it."""
        assert self.recipient is not None
        try:
            if self.done >= len(self.parts):  # nothing (more) to say
                return self.delivered(len(self.parts), done=True)
            sender = senders[self.recipient.channel]
            for number in range(self.done, len(self.parts)):
                sender.send(self.recipient, self.parts[number])
                if not self.delivered(number + 1, done=number + 1 == len(self.parts)):
                    return False
            return True
        except DeliveryFailed as exc:
            self.failed(exc)
        except Exception as exc:
            log.exception("outbox row %s: unexpected error", self.row_id)
            self.failed(DeliveryFailed(type(exc).__name__))
        return False


# the channel of a message's account, as a condition on the outbox alone: the query is then read
# through the index of waiting messages, not through every message ever sent to each account
CHANNEL_OF = select(Account.channel).where(Account.id == Outbox.account_id).scalar_subquery()
WAITING = (Outbox.sent_at.is_(None), Outbox.failed_at.is_(None))
_DUE = (
    select(Outbox.id, Outbox.next_attempt_at)
    .where(*WAITING, Outbox.next_attempt_at <= bindparam("now"))
    .where(CHANNEL_OF.in_(bindparam("channels", expanding=True)))
)  # oldest first, sorted here: an ORDER BY id would have SQLite scan the whole table in id order


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
        due = sorted(session.execute(_DUE, {"now": now(), "channels": list(senders)}).all())
    sent = 0
    for row_id, seen_at in due:
        if stopping():
            break
        attempt = Attempt(db, row_id, now)
        try:
            if attempt.claim(seen_at, senders, render) and attempt.run(senders):
                sent += 1
        except Exception:  # the database failing us: the row is tried again once its lease ends
            log.exception("outbox row %s: could not be claimed or recorded", row_id)
    return sent
