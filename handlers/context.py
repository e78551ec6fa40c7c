"""What a handler knows about the message it answers: who, in which language, and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import NamedTuple

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.orm import Session, aliased, joinedload

from flows import groups, outbox, people, settings
from flows.errors import Refused
from flows.issues import require_registered
from flows.messages import Incoming, Window
from locales import DEFAULT_LOCALE, Translator
from storage.models import Account, DialogState, Group, Household, Person
from storage.prepared import Prepared
from storage.rows import insert_new, locked, one_writer
from storage.seal import BallotKey


class Sender(NamedTuple):
    """Who sent a message, as plain values read with it: most messages need no more."""

    account_id: int
    account_locale: str | None
    person_id: int | None  # None when the account is unbound or its person moved out
    person_locale: str | None
    household_id: int | None
    community_id: int | None
    name: str | None
    in_dialog: bool


class Member(NamedTuple):
    """The sender as a person of the register, in plain values (see `flows.people.Member`)."""

    id: int
    household_id: int | None
    community_id: int
    name: str


@dataclass
class Ctx:
    session: Session
    sender: Sender
    incoming: Incoming
    now: datetime
    t: Translator
    key: BallotKey  # seals and opens secret polls' tallies
    default_timezone: str = "Asia/Shanghai"
    # the account's dialog, loaded with the message when it has one (handlers/dialog.py keeps it current)
    dialog: DialogState | None = None

    # the ORM objects are loaded only when a handler asks: a ballot needs none of them
    @cached_property
    def account(self) -> Account:
        account = self.session.get(Account, self.sender.account_id)
        assert account is not None
        return account

    @cached_property
    def person(self) -> Person | None:
        """With their home (household and building) in the same query: most commands ask where
        they live."""
        return (
            None
            if self.sender.person_id is None
            else self.session.scalar(_PERSON, {"id": self.sender.person_id})
        )

    @cached_property
    def group(self) -> Group | None:
        """The group the message came from, where that group is bound to a scope."""
        if not self.incoming.is_group:
            return None
        return groups.bound(self.session, self.incoming.channel, self.incoming.chat_id)

    @property
    def member(self) -> Member | None:
        """The sender's person without loading it (once loaded or bound by /join, as it now is)."""
        if "person" in self.__dict__:
            p = self.person
            return None if p is None else Member(p.id, p.household_id, p.community_id, p.name)
        s = self.sender
        if s.person_id is None:
            return None
        assert s.community_id is not None and s.name is not None
        return Member(s.person_id, s.household_id, s.community_id, s.name)

    @cached_property
    def resident(self) -> people.Resident:
        """`registered`, as the plain values a support or a comment needs (one query, no ORM)."""
        found = (
            None if self.sender.person_id is None else people.resident(self.session, self.sender.person_id)
        )
        if found is None:
            require_registered(None)
        assert found is not None
        return found

    @property
    def registered(self) -> Person:
        """The person behind the account, or a refusal telling them to /join."""
        return require_registered(self.person)

    @property
    def voter(self) -> Member:
        """`registered`, as plain values."""
        member = self.member
        if member is None:
            require_registered(None)
        assert member is not None
        return member

    def timezone(self, community_id: int) -> str:
        return str(settings.get(self.session, community_id, "timezone", self.default_timezone))


def choose_locale(
    person_locale: str | None, account_locale: str | None, default: str = DEFAULT_LOCALE
) -> str:
    """The person's language, else the account's (chosen before joining), else the community's."""
    return person_locale or account_locale or default


def locale_of(account: Account, person: Person | None, default: str = DEFAULT_LOCALE) -> str:
    return choose_locale(person.locale if person else None, account.locale, default)


# built once, and read as plain values: loading ORM objects costs more than the query
_OTHER = aliased(Account)
_SENDER = Prepared(
    select(
        Account.id,
        Account.locale,
        Person.id,
        Person.locale,
        Person.household_id,
        Person.community_id,
        Person.name,
        Person.moved_out,
        DialogState.account_id.is_not(None),
        Account.blocked_at,
        Account.window_until,
        Account.window_left,
        # the person has another account, used since this one (or this one never): it must be said
        # that this one is in use now. A person with one account is reached through it anyway.
        exists().where(
            _OTHER.person_id == Account.person_id,
            _OTHER.id != Account.id,
            Account.last_seen_at.is_(None) | (_OTHER.last_seen_at > Account.last_seen_at),
        ),
    )
    .outerjoin(Person, Person.id == Account.person_id)
    .outerjoin(DialogState, DialogState.account_id == Account.id)
    .where(Account.channel == bindparam("channel"), Account.external_id == bindparam("external_id"))
)


_PERSON = (
    select(Person)
    .where(Person.id == bindparam("id"))
    .options(joinedload(Person.household).joinedload(Household.building))
)
_HOLD_ACCOUNT = locked(
    select(Account.id).where(
        Account.channel == bindparam("channel"), Account.external_id == bindparam("external_id")
    )
)


def hold_account(session: Session, channel: str, external_id: str, now: datetime) -> int:
    """The account's id, its row held until commit: one person's messages run one at a time (a
    double-tapped "confirm" raises one issue), and the second sees what the first wrote. A new
    account is made by an insert that leaves a row made at the same moment alone: two first
    messages of one account both find it."""
    conn = session.connection()
    key = {"channel": channel, "external_id": external_id}
    account_id = conn.execute(_HOLD_ACCOUNT, key).scalar()
    if account_id is None:
        insert_new(session, Account.__table__, key | {"created_at": now}, ("channel", "external_id"))
        account_id = conn.execute(_HOLD_ACCOUNT, key).scalar()
    assert account_id is not None
    return account_id


def load_sender(
    session: Session, channel: str, external_id: str, now: datetime, window: Window | None = None
) -> Sender:
    """The account (held, see `hold_account`), its person and whether it is in a dialog, read
    after the lock: every message needs them. Where one transaction writes at a time (SQLite),
    no lock is needed and one query does. `window`: the chat window this message opens."""
    key = {"channel": channel, "external_id": external_id}
    row = _SENDER.first(session, key) if one_writer(session) else None
    if row is None:
        hold_account(session, channel, external_id, now)
        row = _SENDER.first(session, key)
        assert row is not None, "the account was just made"
    account_id, account_locale, person_id, person_locale, household_id, community_id, name, gone, dialog = (
        row[:9]
    )
    blocked, window_until, window_left, overtaken = row[9:]
    still_open = window_until is not None and now < window_until and (window_left or 0) > 0
    opened = window is not None and (window.renews or not still_open)
    if opened or (person_id is not None and not gone and (overtaken or blocked)):
        seen_now(session, account_id, None if gone else person_id, now, window if opened else None)
    if person_id is None or gone:
        return Sender(account_id, account_locale, None, None, None, None, None, dialog)
    return Sender(
        account_id, account_locale, person_id, person_locale, household_id, community_id, name, dialog
    )


def seen_now(
    session: Session, account_id: int, person_id: int | None, now: datetime, window: Window | None = None
) -> None:
    """The person writes from this account: it is the one to reach them through (said at every
    change of account, and with each window the platform opens), and no longer blocked; what was
    held for them (blocked, a window closed) goes out."""
    values: dict[str, object] = {"last_seen_at": now, "blocked_at": None}
    if window is not None:
        values |= {"window_until": now + window.lasts, "window_left": window.messages}
    session.connection().execute(update(Account).where(Account.id == account_id).values(**values))
    if person_id is not None:
        outbox.release_held(session, now, person_id=person_id)


def find_account(session: Session, channel: str, external_id: str, now: datetime) -> Account:
    account_id = hold_account(session, channel, external_id, now)
    account = session.get(Account, account_id)
    assert account is not None
    return account


def person_of(session: Session, account: Account) -> Person | None:
    """The person behind an account, loaded with their home in one query."""
    if account.person_id is None:
        return None
    person = session.scalar(
        select(Person)
        .where(Person.id == account.person_id)
        .options(joinedload(Person.household).joinedload(Household.building))
    )
    return None if person is None or person.moved_out else person


def one_arg(text: str, usage: str) -> str:
    """The single argument of a command, or a refusal that shows the usage."""
    arg = text.strip()
    if not arg or len(arg.split()) != 1:
        raise Refused("Usage: {usage}", usage=usage)
    return arg
