"""Messages the bot sends on its own: written with their cause, delivered later, never lost.

A row is addressed to a person (`notify`) or to the groups bound to a scope (`announce`), never
to a chat account: the account is chosen when the row is sent, the one the person used last
that can be reached now. A row ends sent; held (no account of the person can take it now: they
blocked the bot, or a chat window is closed) until they write again or another account of
theirs can; failed, when no retry can help; or dropped, when what made it worth sending has
passed (a reminder of a vote already closed).

`deliver_due` goes through the due rows oldest first and never waits on one target: a target
that may not be sent to yet (a group's 20 a minute, a flood control's `retry_after`) is set
aside and the next row, for another target, goes on. What queued up for one group goes as one
message, as far as the channel's length limit allows. Each attempt claims its rows under a
lease (a conditional update, so two senders never both take one), sends with no transaction
open (on SQLite a transaction holds the database's write lock) and marks them sent, or tries
again by backoff on the same clock. A message is sent twice only if the process died between
sending it and marking it. Quiet hours (a community setting) hold back what is not a reply (a late one included).

A group's vote message is kept current: `edit_live` edits it at most once a minute while the
vote runs, and once more after the close.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Insert, String, bindparam, exists, select, update
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql import ColumnElement

from flows import people, quiet, scopes, settings
from flows.messages import Reply
from storage.db import Database, wake_at
from storage.models import Account, ActionItem, Group, Household, Outbox, Person, Poll, Scope
from storage.prepared import Prepared

log = logging.getLogger("yishi.outbox")

MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=5)
EDIT_EVERY = timedelta(minutes=1)  # a group's vote message is edited at most this often
# channels that reach a person only while someone sits at them (the console): a process that does
# not serve one never waits for it, so an operator speaking as a resident takes nothing of theirs
ATTENDED = frozenset({"console"})


class DeliveryFailed(Exception):
    """A channel could not deliver: `permanent` when trying again cannot help (a text refused),
    `blocked` when the account cannot be reached until the person writes again, `retry_after`
    (seconds) when the platform asks to wait before sending to this chat again, `moved_to` when
    a group has a new id on the platform (to be sent to at once)."""

    def __init__(
        self, reason: str, permanent: bool = False, blocked: bool = False, retry_after: float | None = None,
        moved_to: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(reason)
        self.permanent, self.blocked, self.retry_after = permanent, blocked, retry_after
        self.moved_to = moved_to


class Recipient(NamedTuple):
    """Who a message goes to, in plain values (a channel is called with no transaction open)."""

    channel: str
    chat_id: str  # the person's private chat on the channel, or the group
    name: str  # the console prints it: NAME (NAME@BUILDING-ROOM where two share one), or the group's scope
    locale: str | None  # the reader's language (a group: the community's); None: the default
    community_id: int | None
    person_id: int | None = None
    group_id: int | None = None
    account_id: int | None = None
    markdown: bool = False  # a group set to take the channel's Markdown (a WeCom robot)
    # the account has a chat window (WeChat): each message sent uses one of its messages, and what
    # queued up for the person goes in as few messages as fit
    windowed: bool = False

    @property
    def is_group(self) -> bool:
        return self.group_id is not None


class Pace(NamedTuple):
    """At most `messages` to one chat in any `seconds`."""

    messages: int
    seconds: float


class Sender(Protocol):
    """A channel's sending half. A text longer than `max_length` (as `measure` counts: Telegram
    in UTF-16 units, a WeCom robot in UTF-8 bytes) goes as several messages; `quiet_hours`:
    whether it keeps the communities' quiet hours (a phone does; a terminal not); `at_once`: how
    many of its chats may be sent to at the same time (each chat's messages still in turn), so
    that a slow chat (a WeCom robot taking its time) holds up no other chat nor any other channel;
    1: in turn, in the sending thread."""

    max_length: int | None
    quiet_hours: bool
    at_once: int

    def measure(self, text: str) -> int: ...

    def send(self, recipient: Recipient, message: Reply) -> str | None:
        """Deliver; the platform's id of the message (of its last part), where it has one."""
        ...

    def edit(self, recipient: Recipient, ref: str, message: Reply) -> None:
        """Replace the text (and buttons) of a message sent before; unchanged counts as done."""
        ...

    def pace(self, recipient: Recipient) -> Pace | None: ...


class Row(NamedTuple):
    """What rendering needs of a row."""

    msgid: str
    params: dict
    live: bool


Render = Callable[[Session, Recipient, Row], Reply]


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min … doubling, at most 6 h."""
    return min(timedelta(seconds=30 * 2 ** max(attempts - 1, 0)), timedelta(hours=6))


# --- writing -------------------------------------------------------------------------------------

_COLUMNS = ("msgid", "params", "reason", "created_at", "next_attempt_at", "live", "attempts", "parts_sent")


def _values(at: datetime, msgid: str, params: dict, reason: str | None, live: bool) -> dict:
    return {
        "msgid": msgid, "params": params, "reason": reason, "created_at": at, "next_attempt_at": at,
        "live": live, "attempts": 0, "parts_sent": 0,
    }  # fmt: skip


def _bound(name: str) -> object:
    return bindparam(name, type_=Outbox.__table__.c[name].type)


_HAS_ACCOUNT = exists().where(Account.person_id == Person.id)


# a row for each person with a chat account among those named (the others cannot be reached: a
# reminder for them is skipped, not kept for ever)
def _notify(named: ColumnElement[bool]) -> Insert:
    return (
        Outbox.__table__.insert()
        .from_select(
            ["person_id", *_COLUMNS],
            select(Person.id, *(_bound(c) for c in _COLUMNS)).where(named, _HAS_ACCOUNT),
        )
        .execution_options(preserve_rowcount=True)
    )


_NOTIFY = _notify(Person.id.in_(bindparam("people", expanding=True)))
_NOTIFY_ONE = Prepared(_notify(Person.id == bindparam("person")))  # a comment's, a reply's: the busiest


def notify(
    session: Session,
    person: Person | int,
    at: datetime,
    msgid: str,
    /,
    reason: str | None = None,
    **params: object,
) -> bool:
    """Queue a message for a person (or a person's id); False when they have no chat account."""
    values = {
        "person": person if isinstance(person, int) else person.id,
        **_values(at, msgid, params, reason, False),
    }
    return _queued(session, _NOTIFY_ONE.rowcount(session, values), 1, at, msgid) == 1


def notify_all(
    session: Session,
    people_ids: Iterable[int],
    at: datetime,
    msgid: str,
    /,
    reason: str | None = None,
    **params: object,
) -> int:
    """The same message for many people, in one statement (a vote opened for 3,000 residents);
    the number queued."""
    ids = sorted(set(people_ids))
    if not ids:
        return 0
    values = {"people": ids, **_values(at, msgid, params, reason, False)}
    return _queued(session, session.connection().execute(_NOTIFY, values).rowcount, len(ids), at, msgid)


def _queued(session: Session, queued: int, named: int, at: datetime, msgid: str) -> int:
    """`queued` of the `named` people's messages: the clock is told of them, or it is said why none."""
    if queued:
        wake_at(session, "message", at)
    else:
        log.info("nobody of %d people has a chat account: %r not queued", named, msgid)
    return queued


REPLY = "{text}"  # the words of a reply, written already


def notify_reply(session: Session, person_id: int, at: datetime, text: str) -> bool:
    """A reply that could not be answered in the time the platform waits (WeChat's five seconds),
    sent as a message of the bot's own. Its words are stored: never a secret ballot's choice."""
    return notify(session, person_id, at, REPLY, text=text)


_RELATED = aliased(Scope)
_ANNOUNCE = (
    Outbox.__table__.insert()
    .from_select(
        ["group_id", *_COLUMNS],
        select(Group.id, *(_bound(c) for c in _COLUMNS))
        .join(_RELATED, _RELATED.id == Group.scope_id)
        .where(
            Group.community_id == bindparam("community"),
            Group.unbound_at.is_(None),
            # the scope itself or one above it (its path a prefix of this one's), or one inside it
            scopes.encloses(_RELATED.path, bindparam("path", type_=String()))
            | scopes.below(_RELATED.path, bindparam("path", type_=String())),
        ),
    )
    .execution_options(preserve_rowcount=True)
)


def announce(
    session: Session, scope: Scope, at: datetime, msgid: str, /, live: bool = False, reason: str | None = None,
    **params: object,
) -> int:  # fmt: skip
    """Queue a message for every group bound to the scope, to a scope above it or to one inside it
    (a building's group hears of its building's issues and of the whole community's); the number
    of groups. A `live` message is a vote's, kept current by edits."""
    assert not live or "poll" in params, "a live message is a vote's"
    values = {"community": scopes.community_id(scope), "path": scope.path}
    queued = (
        session.connection().execute(_ANNOUNCE, values | _values(at, msgid, params, reason, live)).rowcount
    )
    if queued:
        wake_at(session, "message", at)
    return queued


_TO_GROUP = Outbox.__table__.insert()


def notify_group(session: Session, group_id: int, at: datetime, msgid: str, /, **params: object) -> None:
    """Queue a message for one bound group (its weekly digest)."""
    session.connection().execute(_TO_GROUP, {"group_id": group_id, **_values(at, msgid, params, None, False)})
    wake_at(session, "message", at)


def release_held(
    session: Session, at: datetime, person_id: int | None = None, group_id: int | None = None
) -> None:
    """The person (or group) can be reached again: they wrote from a blocked account, bound a new
    one, the bot is back in the group. What was held for them is due now."""
    target = Outbox.person_id == person_id if person_id is not None else Outbox.group_id == group_id
    session.connection().execute(
        update(Outbox).where(target, Outbox.held_at.is_not(None)).values(held_at=None, next_attempt_at=at)
    )
    wake_at(session, "message", at)


# --- whether a row is still worth sending ------------------------------------------------------


def _poll_reason(session: Session, poll_id: int, now: datetime) -> bool:
    found = session.execute(select(Poll.closed_at, Poll.closes_at).where(Poll.id == poll_id)).first()
    return found is not None and found.closed_at is None and now < found.closes_at


def _item_reason(session: Session, item_id: int, now: datetime) -> bool:
    return session.scalar(select(ActionItem.done_at).where(ActionItem.id == item_id)) is None


# `kind:id` → whether the message is still worth sending at `now`
REASONS: dict[str, Callable[[Session, int, datetime], bool]] = {"poll": _poll_reason, "item": _item_reason}


def still_worth(session: Session, reason: str | None, now: datetime) -> bool:
    if reason is None:
        return True
    kind, _, subject = reason.partition(":")
    return REASONS[kind](session, int(subject), now)


def reason_ends(session: Session, reason: str | None) -> datetime | None:
    """When a reason passes at the latest (a vote's close), where that is known in advance."""
    if reason is None or not reason.startswith("poll:"):
        return None
    return session.scalar(select(Poll.closes_at).where(Poll.id == int(reason.split(":")[1])))


# --- splitting long texts ------------------------------------------------------------------------


def utf16_units(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units): an emoji outside the BMP counts two."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def utf8_bytes(text: str) -> int:
    """Length as a WeCom robot counts it: a Chinese character is three."""
    return len(text.encode())


Measure = Callable[[str], int]


def _fitting(text: str, limit: int, measure: Measure) -> int:
    """How many of `text`'s first characters fit in `limit` units (at least one)."""
    units = 0
    for index, ch in enumerate(text):
        units += measure(ch)
        if units > limit:
            return max(index, 1)
    return len(text)


def split(text: str, limit: int | None, measure: Measure = utf16_units) -> list[str]:
    """A text as messages of at most `limit` units as `measure` counts them (UTF-16 units by
    default), cut at line ends where possible; parts with nothing to say are left out."""
    assert limit is None or limit >= measure("\U0010ffff"), "a part must hold any one character"
    text = text.replace("\r\n", "\n")
    parts: list[str] = []
    while limit is not None and measure(text) > limit:
        end = _fitting(text, limit, measure)
        cut = text.rfind("\n", 0, end + 1)
        cut = end if cut <= 0 else cut
        parts.append(text[:cut])
        text = text[cut:].lstrip("\n")
    return [part for part in [*parts, text] if part.strip()]


# --- pacing --------------------------------------------------------------------------------------


@dataclass
class Pacer:
    """When each chat may next be sent to, in this process: its channel's pace, a wait the
    platform asked for, and the backoff after a failed attempt. Kept by the sender across runs,
    on the sender's clock."""

    clock: Callable[[], datetime]
    sent: dict[tuple[str, str], deque[datetime]] = field(default_factory=dict)
    paused: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def wait(self, recipient: Recipient, pace: Pace | None) -> timedelta:
        """How long until a message may go to this chat (nothing: now)."""
        key, now = (recipient.channel, recipient.chat_id), self.clock()
        free = self.paused.get(key, now)
        times = self.sent.get(key)
        if pace is not None and times is not None:
            window = timedelta(seconds=pace.seconds)
            while times and now - times[0] >= window:
                times.popleft()
            if len(times) >= pace.messages:
                free = max(free, times[0] + window)
        return max(free - now, timedelta())

    def went(self, recipient: Recipient, pace: Pace | None) -> None:
        if pace is not None:
            times = self.sent.setdefault((recipient.channel, recipient.chat_id), deque())
            times.append(self.clock())
            while len(times) > pace.messages:
                times.popleft()

    def spaced(self, recipient: Recipient, pace: Pace, at: datetime) -> bool:
        """Whether an even share of the pace has passed since this chat's last message (3 s for
        20 a minute): when it may go before others that wait, though its pace would allow more."""
        times = self.sent.get((recipient.channel, recipient.chat_id))
        return not times or at - times[-1] >= timedelta(seconds=pace.seconds / pace.messages)

    def pause(self, recipient: Recipient, until: datetime) -> None:
        key = (recipient.channel, recipient.chat_id)
        self.paused[key] = max(until, self.paused.get(key, until))


# --- where a row goes --------------------------------------------------------------------------

_NAMESAKE = aliased(Person)
_DUE = select(
    Outbox.id, Outbox.next_attempt_at, Outbox.person_id, Outbox.group_id, Outbox.reason, Outbox.msgid
).where(
    Outbox.sent_at.is_(None),
    Outbox.failed_at.is_(None),
    Outbox.held_at.is_(None),
    Outbox.next_attempt_at <= bindparam("now"),
)  # fmt: skip  (oldest first, sorted here: an ORDER BY id would have SQLite scan the table in id order)
_ACCOUNTS = (  # the accounts of the people named, with what a message to them needs
    select(
        Account.person_id, Account.id, Account.channel, Account.external_id, Account.locale,
        Account.last_seen_at, Account.blocked_at, Person.community_id, Person.name, Person.locale,
        Scope.name, Household.room, Account.window_until, Account.window_left,
        exists().where(
            _NAMESAKE.community_id == Person.community_id, _NAMESAKE.name == Person.name,
            _NAMESAKE.id != Person.id, _NAMESAKE.moved_out.is_(False),
        ),
    )
    .join(Person, (Person.id == Account.person_id) & Person.moved_out.is_(False))
    .outerjoin(Household, Household.id == Person.household_id)
    .outerjoin(Scope, Scope.id == Household.building_id)
    .where(Account.person_id.in_(bindparam("people", expanding=True)))
)  # fmt: skip
_GROUPS = (
    select(
        Group.id,
        Group.channel,
        Group.chat_id,
        Group.community_id,
        Group.unbound_at,
        Group.blocked_at,
        Group.markdown,
        Scope.path,
    )
    .join(Scope, Scope.id == Group.scope_id)
    .where(Group.id.in_(bindparam("groups", expanding=True)))
)


class Where(NamedTuple):
    """A due row's target, as resolved now: where to, or why not."""

    recipient: Recipient | None  # None: held (no account can take it now), or gone
    unserved: bool = False  # its account is on a channel this process does not serve
    gone: str | None = None  # why it can never go: the person moved out, the group was unbound


def _reachable_sql(now: datetime) -> ColumnElement[bool]:
    """`_reachable`, as a condition on an outbox row: its person has an account that can take it,
    or its group has the bot."""
    person = exists().where(
        Account.person_id == Outbox.person_id,
        Account.blocked_at.is_(None),
        Account.window_until.is_(None) | ((Account.window_until > now) & (Account.window_left > 0)),
    )
    group = exists().where(Group.id == Outbox.group_id, Group.blocked_at.is_(None))
    return person | group


def _reachable(
    blocked: datetime | None, window_until: datetime | None, window_left: int | None, now: datetime
) -> bool:
    """Not blocked, and within its chat window (where it has one) with messages left."""
    return blocked is None and (window_until is None or (now < window_until and (window_left or 0) > 0))


def resolve(session: Session, rows: list, served: Collection[str], now: datetime) -> dict[int, Where]:
    """Where each row goes now: the person's account they used last that can be reached, or the
    group (which reads the community's language)."""
    people_ids = {r.person_id for r in rows if r.person_id is not None}
    group_ids = {r.group_id for r in rows if r.group_id is not None}
    accounts: dict[int, list] = {}
    if people_ids:
        for a in session.connection().execute(_ACCOUNTS, {"people": sorted(people_ids)}):
            accounts.setdefault(a[0], []).append(a)
    groups = (
        {g.id: g for g in session.connection().execute(_GROUPS, {"groups": sorted(group_ids)})}
        if group_ids
        else {}
    )
    moved = set(
        session.scalars(select(Person.id).where(Person.id.in_(people_ids), Person.moved_out.is_(True)))
        if people_ids - accounts.keys()
        else ()
    )
    found: dict[int, Where] = {}
    for row in rows:
        if row.person_id in moved:
            found[row.id] = Where(None, gone="the person moved out")
            continue
        if row.group_id is not None:
            g = groups[row.group_id]
            if g.unbound_at is not None:
                found[row.id] = Where(None, gone="the group was unbound")
                continue
            if g.blocked_at is not None:  # the bot is not in it: held until it is back
                found[row.id] = Where(None)
                continue
            name = f"GROUP {g.path}"
            locale = str(settings.get(session, g.community_id, "locale")) or None
            recipient = Recipient(
                g.channel, g.chat_id, name, locale, g.community_id, group_id=g.id, markdown=g.markdown
            )
            found[row.id] = Where(recipient, unserved=g.channel not in served)
            continue
        mine = sorted(
            accounts.get(row.person_id, []),
            key=lambda a: (a.last_seen_at is not None, a.last_seen_at or now, a.id),
            reverse=True,
        )
        reachable = [a for a in mine if _reachable(a.blocked_at, a.window_until, a.window_left, now)]
        # an attended channel (the console) not served here is passed over for any other: it is
        # not waited for; only where it is all there is, the row is left to its process
        best = next((a for a in reachable if a.channel in served or a.channel not in ATTENDED), None)
        best = best or next(iter(reachable), None)
        if best is None:
            found[row.id] = Where(None)
            continue
        (_, account_id, channel, external, account_locale, _, _, community, name, person_locale, building, room,
         window_until, _, namesake) = best  # fmt: skip
        shown = people.labelled(name, building, room) if namesake else name
        recipient = Recipient(
            channel, external, shown, person_locale or account_locale, community, person_id=row.person_id,
            account_id=account_id, windowed=window_until is not None,
        )  # fmt: skip
        found[row.id] = Where(recipient, unserved=channel not in served)
    return found


# --- sending -------------------------------------------------------------------------------------

_CLAIM = (
    update(Outbox)
    .where(
        Outbox.id.in_(bindparam("rows", expanding=True)),
        Outbox.sent_at.is_(None), Outbox.failed_at.is_(None), Outbox.held_at.is_(None),
        Outbox.next_attempt_at <= bindparam("now"),
    )
    .values(next_attempt_at=bindparam("lease"), attempts=Outbox.attempts + 1)
    .returning(Outbox.id, Outbox.attempts, Outbox.msgid, Outbox.params, Outbox.reason, Outbox.rendered,
               Outbox.parts_sent, Outbox.live)
)  # fmt: skip
_OUTBOX = Outbox.__table__
_RENDERED = _OUTBOX.update().where(_OUTBOX.c.id == bindparam("row"))  # SET what the parameters name
# an attempt's rows, while its lease holds them (SET what the parameters name)
_MARK = _OUTBOX.update().where(
    _OUTBOX.c.id.in_(bindparam("rows", expanding=True)), _OUTBOX.c.next_attempt_at == bindparam("lease")
)
DROPPED = "dropped: what it was about has passed"


class Outcome(NamedTuple):
    sent: bool
    again: datetime | None = None  # not before then, for this chat (a backoff, or the platform's wait)
    chat_ok: bool = True  # False: the chat itself is in trouble (its other messages wait too)


class Attempt:
    """One attempt at one message to one target (several rows, where a group's queued up), under
    a lease: the rows are ours while `next_attempt_at` holds our lease, which is renewed with
    each part delivered. Every write checks it, so a sender that overran its lease stops instead
    of sending alongside the one that took the rows over."""

    def __init__(self, db: Database, recipient: Recipient, now: Callable[[], datetime]) -> None:
        self.db, self.recipient, self.now = db, recipient, now
        self.lease = now() + LEASE
        self.rows: list[int] = []  # the rows this message carries
        self.settled: set[int] = set()  # the rows it carries, and those found not worth sending
        self.attempts = 0
        self.message = Reply("")
        self.parts: list[str] = []
        self.done = 0  # parts delivered by earlier attempts

    def claim(
        self, row_ids: list[int], render: Render, max_length: int | None, measure: Measure = utf16_units
    ) -> bool:
        """The rows still as they were seen, leased, rendered (once: a retry sends the words of the
        first attempt) and, for a group, packed into one message within `max_length`, in one
        transaction. A person's rows go one a message. Rows whose reason has passed are dropped;
        one that cannot be rendered is tried again by backoff and holds up none of the others;
        those that do not fit wait for the next message, and a vote's message (with its buttons)
        goes on its own."""
        now = self.now()
        row_ids = row_ids if self.recipient.is_group or self.recipient.windowed else row_ids[:1]
        with self.db.transaction() as session:
            conn = session.connection()
            won = sorted(conn.execute(_CLAIM, {"rows": row_ids, "now": now, "lease": self.lease}).all())
            texts: list[str] = []
            dropped, broken, later = [], [], []
            for r in won:
                if not still_worth(session, r.reason, now):
                    dropped.append(r.id)
                    continue
                try:
                    with session.begin_nested():
                        message = render(session, self.recipient, Row(r.msgid, r.params, r.live))
                except Exception as exc:  # a fault of ours: logged, and tried again like a failed delivery
                    log.exception("outbox row %s: unexpected error", r.id)
                    broken.append((r, type(exc).__name__))
                    continue
                if r.rendered is not None:
                    message = replace(message, text=r.rendered)
                standalone = r.live or bool(message.options) or message.start is not None
                joined = "\n\n".join([*texts, message.text])
                if texts and (standalone or self.alone or (max_length and measure(joined) > max_length)):
                    later.append(r.id)  # in a message of its own, at the next turn
                    continue
                if r.rendered is None:
                    conn.execute(_RENDERED, {"row": r.id, "rendered": message.text})
                texts.append(message.text)
                self.rows.append(r.id)
                self.message = replace(message, text=joined) if len(texts) > 1 else message
                self.attempts, self.done = max(self.attempts, r.attempts), r.parts_sent
            if dropped:
                session.execute(
                    update(Outbox).where(Outbox.id.in_(dropped)).values(failed_at=now, error=DROPPED)
                )
            for r, error in broken:
                session.execute(
                    update(Outbox).where(Outbox.id == r.id)
                    .values(error=error, next_attempt_at=now + backoff(r.attempts),
                            **({"failed_at": now} if r.attempts >= MAX_ATTEMPTS else {}))
                )  # fmt: skip
            if later:  # not attempted after all
                session.execute(
                    update(Outbox)
                    .where(Outbox.id.in_(later))
                    .values(next_attempt_at=now, attempts=Outbox.attempts - 1)
                )
        self.settled = {*self.rows, *dropped, *(r.id for r, _ in broken)}
        self.parts = split(self.message.text, max_length, measure)
        return bool(self.rows)

    @property
    def alone(self) -> bool:
        """The message claimed so far takes nothing more: a vote's, with buttons or a link."""
        return bool(self.message.options) or self.message.start is not None

    def delivered(self, parts_sent: int, done: bool, ref: str | None = None) -> bool:
        """Record progress and renew the lease; False if the lease was lost (stop sending)."""
        now = self.now()
        renewed = now + LEASE
        values: dict[str, object] = {"parts_sent": parts_sent, "next_attempt_at": renewed}
        if done:
            values |= {"sent_at": now, "account_id": self.recipient.account_id, "sent_ref": ref}
            if self.alone:
                values |= {"shown": self.message.text, "edited_at": now}
        with self.db.transaction() as session:
            won = (
                session.connection()
                .execute(_MARK, {"rows": self.rows, "lease": self.lease, **values})
                .rowcount
            )
            if self.recipient.windowed:  # one of the messages its window allows
                session.execute(
                    update(Account)
                    .where(Account.id == self.recipient.account_id)
                    .values(window_left=Account.window_left - 1)
                )
        self.lease = renewed
        return won == len(self.rows)

    def failed(self, exc: DeliveryFailed) -> datetime | None:
        """Record the failure; when the rows are due again, if they are."""
        now = self.now()
        values: dict[str, object] = {"error": str(exc)[:500], "account_id": self.recipient.account_id}
        again: datetime | None = None
        if exc.blocked or exc.moved_to:  # at once: the person's other accounts, the group's new id
            again = now
            values |= {"next_attempt_at": now, "attempts": Outbox.attempts - 1}
        elif exc.permanent or self.attempts >= MAX_ATTEMPTS:
            values["failed_at"] = now
        else:
            again = now + (timedelta(seconds=exc.retry_after) if exc.retry_after else backoff(self.attempts))
            values["next_attempt_at"] = again
        with self.db.transaction() as session:
            session.connection().execute(_MARK.values(**values), {"rows": self.rows, "lease": self.lease})
            if exc.blocked and self.recipient.account_id is not None:
                session.execute(
                    update(Account).where(Account.id == self.recipient.account_id).values(blocked_at=now)
                )
            if exc.blocked and self.recipient.group_id is not None:  # the bot was removed from it
                session.execute(
                    update(Group).where(Group.id == self.recipient.group_id).values(blocked_at=now)
                )
            if exc.moved_to and self.recipient.group_id is not None:  # followed: nothing queued is lost
                session.execute(
                    update(Group).where(Group.id == self.recipient.group_id).values(chat_id=exc.moved_to)
                )
            if again is not None:
                wake_at(session, "message", again)
        return again

    def run(self, sender: Sender) -> Outcome:
        """Send each part not yet delivered, recording each as it goes: a process killed mid-message
        sends again only the part in flight. A fault of ours (a channel's bug) is logged and tried
        again by backoff like a failed delivery."""
        try:
            if self.done >= len(self.parts):  # nothing (more) to say
                return Outcome(self.delivered(len(self.parts), done=True))
            for number in range(self.done, len(self.parts)):
                last = number + 1 == len(self.parts)
                part = replace(self.message, text=self.parts[number]) if last else Reply(self.parts[number])
                ref = sender.send(self.recipient, part)
                if not self.delivered(number + 1, done=last, ref=ref):
                    return Outcome(False)
            return Outcome(True)
        except DeliveryFailed as exc:
            # blocked: tried again at once, on the person's next account; refused for good: this
            # message only; else the chat waits out the backoff (or the platform's wait)
            again = self.failed(exc)
            at_once = exc.blocked or exc.moved_to is not None
            return Outcome(False, None if at_once else again, chat_ok=exc.permanent and not at_once)
        except Exception as exc:
            log.exception("outbox row %s: unexpected error", ", ".join(map(str, self.rows)))
            return Outcome(False, self.failed(DeliveryFailed(type(exc).__name__)), chat_ok=False)


@dataclass
class Delivery:
    """What a run of `deliver_due` did: messages sent, and when a target set aside may go next."""

    sent: int = 0
    next_at: datetime | None = None

    def later(self, at: datetime) -> None:
        self.next_at = at if self.next_at is None else min(self.next_at, at)


def _plan(
    db: Database, at: datetime, served: Mapping[str, Sender], done: Delivery
) -> list[tuple[Recipient, list[int]]]:
    """The due rows by target, oldest first, in one transaction: rows nobody can take now are held,
    and in quiet hours rows wait for their end (a reminder that would be too late then is dropped)."""
    with db.transaction() as session:
        due = sorted(session.connection().execute(_DUE, {"now": at}).all())
        where = resolve(session, due, served, at)
        for reason in {w.gone for w in where.values() if w.gone}:
            gone = [r.id for r in due if where[r.id].gone == reason]
            session.execute(update(Outbox).where(Outbox.id.in_(gone)).values(failed_at=at, error=reason))
        held = [r.id for r in due if where[r.id].recipient is None and not where[r.id].gone]
        if held:  # unless an account of the person was unblocked meanwhile: then the next run sends
            session.execute(
                update(Outbox)
                .where(Outbox.id.in_(held), Outbox.held_at.is_(None), ~_reachable_sql(at))
                .values(held_at=at)
            )
        targets = {w.recipient for w in where.values() if w.recipient is not None and not w.unserved}
        # quiet hours, where the channel keeps them (a phone does, a terminal not)
        keeping = {
            t.community_id for t in targets if t.community_id is not None and served[t.channel].quiet_hours
        }
        quiet_ends = quiet.ends(session, keeping, at)
        plan: dict[Recipient, list[int]] = {}
        for row in due:
            recipient = where[row.id].recipient
            if recipient is None or where[row.id].unserved:
                continue
            # a reply is no message of the bot's own: it keeps no quiet hours
            quiet_end = row.msgid != REPLY and recipient.community_id is not None
            end = quiet_ends.get(recipient.community_id) if quiet_end else None
            if end is None:
                plan.setdefault(recipient, []).append(row.id)
                continue
            too_late = reason_ends(session, row.reason)
            if too_late is not None and too_late <= end:
                session.execute(update(Outbox).where(Outbox.id == row.id).values(failed_at=at, error=DROPPED))
            else:
                session.execute(update(Outbox).where(Outbox.id == row.id).values(next_attempt_at=end))
                done.later(end)
    return sorted(plan.items(), key=lambda item: item[1][0])


class _Target:
    """One target's due rows in this run, sent one message (one claim) a turn."""

    def __init__(
        self, db: Database, now: Callable[[], datetime], sender: Sender, recipient: Recipient,
        rows: list[int], render: Render, pacer: Pacer,
    ) -> None:  # fmt: skip
        self.db, self.now, self.sender, self.recipient = db, now, sender, recipient
        self.rows, self.render, self.pacer = rows, render, pacer
        self.pace = sender.pace(recipient)
        self.done = Delivery()
        self.over = False  # done with in this run: it must wait (a failure's backoff) or cannot go on

    @property
    def open(self) -> bool:
        return bool(self.rows) and not self.over

    def wait(self) -> timedelta:
        return self.pacer.wait(self.recipient, self.pace)

    def turn(self) -> None:
        """Send its next message, where it may be sent now; else it is set aside for this run."""
        wait = self.wait()
        if wait:
            self.done.later(self.now() + wait)
            self.over = True
            return
        attempt = Attempt(self.db, self.recipient, self.now)
        try:
            claimed = attempt.claim(self.rows, self.render, self.sender.max_length, self.sender.measure)
            if claimed:
                self.pacer.went(self.recipient, self.pace)
                outcome = attempt.run(self.sender)
        except Exception:  # the database failing us: the rows are tried again once their lease ends
            log.exception("outbox rows %s: could not be claimed or recorded", self.rows)
            self.over = True
            return
        self.rows = [r for r in self.rows if r not in attempt.settled]
        if not claimed:  # none of those settled was for sending (dropped, or broken): the next, if any
            self.over = not attempt.settled
            return
        if not outcome.sent and not outcome.chat_ok:
            if outcome.again is not None:  # the chat is in trouble: its other rows wait too
                self.pacer.pause(self.recipient, outcome.again)
                self.done.later(outcome.again)
            self.over = True
            return
        self.done.sent += outcome.sent


def _to_target(target: _Target, stopping: Callable[[], bool]) -> Delivery:
    """One target's rows in turn, until it must wait or `stopping` says so (a pool's task)."""
    while target.open and not stopping():
        target.turn()
    return target.done


def _in_turn(targets: list[_Target], now: Callable[[], datetime], stopping: Callable[[], bool]) -> None:
    """The targets of channels that send one message at a time, in this thread, one message a turn.
    A paced target (a group, 20 a minute) takes a turn as soon as an even share of its pace has
    passed (every 3 s), so that groups and private chats share the channel's overall rate (Telegram's
    30 a second) with neither waiting for the other to finish; a private chat's rows go one after
    another, oldest first. A group goes faster than its even share (its pace allows bursts) only when
    nothing else is waiting. A paced target that must wait is looked at again while others go on."""
    paced = [t for t in targets if t.pace is not None]
    free = deque(t for t in targets if t.pace is None)
    while not stopping():
        paced = [t for t in paced if t.open]
        ready = [t for t in paced if not t.wait()]
        due = [t for t in ready if t.pacer.spaced(t.recipient, t.pace, now())]
        while free and not free[0].open:
            free.popleft()
        if due:
            target = min(due, key=lambda t: t.rows[0])
        elif free:
            target = free[0]
        elif ready:
            target = min(ready, key=lambda t: t.rows[0])
        else:
            break
        target.turn()
    at = now()
    for target in paced:
        if target.open:
            target.done.later(at + target.wait())


def deliver_due(
    db: Database,
    now: Callable[[], datetime],
    senders: Mapping[str, Sender],
    render: Render,
    pacer: Pacer,
    stopping: Callable[[], bool] = lambda: False,
) -> Delivery:
    """Send every due message on the given channels, until `stopping` says so. Each claim and
    mark reads the clock afresh: a long run hands out no lease already run out. The targets of a
    channel that sends to several chats at once (`at_once`) go in a pool of their own, alongside
    the others, which share this thread (`_in_turn`; the pacer's entries are each target's own)."""
    done = Delivery()
    targets = [
        _Target(db, now, senders[r.channel], r, rows, render, pacer)
        for r, rows in _plan(db, now(), senders, done)
    ]
    pools = {
        name: ThreadPoolExecutor(sender.at_once, thread_name_prefix=f"send-{name}")
        for name, sender in senders.items()
        if sender.at_once > 1 and any(t.recipient.channel == name for t in targets)
    }
    try:
        futures = [
            pools[t.recipient.channel].submit(_to_target, t, stopping)
            for t in targets
            if t.recipient.channel in pools
        ]
        _in_turn([t for t in targets if t.recipient.channel not in pools], now, stopping)
        for future in futures:
            future.result()
    finally:
        for pool in pools.values():
            pool.shutdown(wait=True)
    for target in targets:
        done.sent += target.done.sent
        if target.done.next_at is not None:
            done.later(target.done.next_at)
    return done


# --- a group's vote message, kept current ------------------------------------------------------

# as the partial index `ix_outbox_live` has it (storage/models.py), which keeps this from reading the outbox
_LIVE = select(Outbox.id, Outbox.person_id, Outbox.group_id, Outbox.msgid, Outbox.params, Outbox.sent_ref,
               Outbox.shown, Outbox.edited_at).where(Outbox.live.is_(True), Outbox.sent_ref.is_not(None))  # fmt: skip
_CLOSED = select(Poll.id, Poll.closed_at).where(Poll.id.in_(bindparam("polls", expanding=True)))


class Live(NamedTuple):
    """A group's vote message to keep current, as the look after a delivery found it."""

    row: Any  # the outbox row (`_LIVE`'s columns)
    closed: bool  # its vote has closed: one last edit ends its edits
    where: Where


def live_messages(session: Session, senders: Mapping[str, Sender], at: datetime) -> list[Live]:
    """The groups' vote messages that are kept current (read in the look at what is next due)."""
    conn = session.connection()
    live = conn.execute(_LIVE).all()
    if not live:
        return []
    polls = dict(conn.execute(_CLOSED, {"polls": sorted({r.params["poll"] for r in live})}).all())
    where = resolve(session, live, senders, at)
    return [Live(row, polls.get(row.params["poll"]) is not None, where[row.id]) for row in live]


def edit_live(
    db: Database,
    now: Callable[[], datetime],
    senders: Mapping[str, Sender],
    render: Render,
    pacer: Pacer,
    live: list[Live],
    at: datetime,
) -> datetime | None:
    """Edit each group's vote message whose text has changed (the turnout; an open vote's counts),
    at most once a minute while the vote runs, and once more after its close, which ends its
    edits; `live` as `live_messages` found them at `at`. When the next edit may be due."""
    next_at: datetime | None = None
    for row, closed, where in live:
        recipient = where.recipient
        due_at = (row.edited_at or at) + EDIT_EVERY
        if recipient is None or where.unserved or (not closed and at < due_at):
            if not closed:
                next_at = due_at if next_at is None else min(next_at, due_at)
            continue
        sender = senders[recipient.channel]
        if pacer.wait(recipient, sender.pace(recipient)):
            next_at = at + EDIT_EVERY if next_at is None else min(next_at, at + EDIT_EVERY)
            continue
        with db.transaction() as session:
            message = render(session, recipient, Row(row.msgid, row.params, True))
        try:
            if message.text != row.shown:
                sender.edit(recipient, row.sent_ref, message)
                pacer.went(recipient, sender.pace(recipient))
        except DeliveryFailed as exc:
            log.warning("the vote message %s in %s was not edited: %s", row.id, recipient.name, exc)
            if exc.retry_after:
                pacer.pause(recipient, now() + timedelta(seconds=exc.retry_after))
            # a message gone, or a group without the bot: no more edits; else tried in a minute
            done_with = exc.permanent or exc.blocked
            with db.transaction() as session:
                session.execute(
                    update(Outbox).where(Outbox.id == row.id).values(edited_at=now(), live=not done_with)
                )
            continue
        with db.transaction() as session:
            session.execute(
                update(Outbox).where(Outbox.id == row.id)
                .values(shown=message.text, edited_at=now(), live=not closed)
            )  # fmt: skip
        if not closed:
            next_at = at + EDIT_EVERY if next_at is None else min(next_at, at + EDIT_EVERY)
    return next_at


# --- what the operator sees (`yishi outbox`) -----------------------------------------------------


class Waiting(NamedTuple):
    """A row not sent: queued (due or due later), held, or failed, and where it would go now."""

    id: int
    state: str  # queued | held | failed | dropped
    channel: str  # the channel it goes to now ("-" where no account can take it)
    to: str
    msgid: str
    error: str | None


def report(session: Session, now: datetime) -> list[Waiting]:
    """Every message not sent, oldest first, with where it would go now."""
    rows = sorted(
        session.execute(
            select(Outbox.id, Outbox.person_id, Outbox.group_id, Outbox.msgid, Outbox.held_at,
                   Outbox.failed_at, Outbox.error)
            .where(Outbox.sent_at.is_(None))
        ).all()
    )  # fmt: skip
    where = resolve(session, rows, (), now)
    found = []
    for r in rows:
        dropped = r.failed_at is not None and (r.error or "").startswith(DROPPED)
        state = "dropped" if dropped else "failed" if r.failed_at else "held" if r.held_at else "queued"
        recipient = where[r.id].recipient
        channel, to = (recipient.channel, recipient.name) if recipient else ("-", f"person {r.person_id}")
        found.append(Waiting(r.id, state, channel, to, r.msgid, r.error))
    return found


def retry(session: Session, row_id: int, now: datetime) -> bool:
    """A failed or held message due again now, its attempts counted anew; False if there is none
    such (unknown, or sent already)."""
    again = session.execute(
        update(Outbox)
        .where(Outbox.id == row_id, Outbox.sent_at.is_(None))
        .where((Outbox.failed_at.is_not(None)) | (Outbox.held_at.is_not(None)))
        .values(failed_at=None, held_at=None, error=None, attempts=0, next_attempt_at=now)
    ).rowcount
    if again:
        wake_at(session, "message", now)
    return again == 1
