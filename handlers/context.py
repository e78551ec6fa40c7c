"""What a handler knows about the message it answers: who, in which language, and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload

from bot.i18n import DEFAULT_LOCALE, Translator
from flows import settings
from flows.errors import Refused
from flows.issues import require_registered
from handlers.messages import Incoming
from storage.models import Account, DialogState, Household, Person


@dataclass
class Ctx:
    session: Session
    account: Account
    person: Person | None
    incoming: Incoming
    now: datetime
    t: Translator
    default_timezone: str = "Asia/Shanghai"
    # the account's dialog as loaded with the account (handlers/dialog.py keeps it current)
    dialog: DialogState | None = None
    # a /command left a dialog: kept left even if the command is refused and its transaction undone
    left_dialog: bool = False

    @property
    def registered(self) -> Person:
        """The person behind the account, or a refusal telling them to /join."""
        return require_registered(self.person)

    def timezone(self, community_id: int) -> str:
        return str(settings.get(self.session, community_id, "timezone", self.default_timezone))


def locale_of(account: Account, person: Person | None, default: str = DEFAULT_LOCALE) -> str:
    return (person.locale if person and person.locale else None) or account.locale or default


# built once: constructing a select with its loader options costs more than running it
_SENDER = (
    select(Account, Person, DialogState)
    .outerjoin(Person, Person.id == Account.person_id)
    .outerjoin(DialogState, DialogState.account_id == Account.id)
    .where(Account.channel == bindparam("channel"), Account.external_id == bindparam("external_id"))
)


def load_sender(
    session: Session, channel: str, external_id: str, now: datetime
) -> tuple[Account, Person | None, DialogState | None]:
    """The account, its person and its dialog, in one query: every message needs them."""
    row = session.execute(_SENDER, {"channel": channel, "external_id": external_id}).first()
    if row is None:
        return find_account(session, channel, external_id, now), None, None
    account, person, state = row
    return account, (None if person is None or person.moved_out else person), state


def find_account(session: Session, channel: str, external_id: str, now: datetime) -> Account:
    account = session.scalar(
        select(Account).where(Account.channel == channel, Account.external_id == external_id)
    )
    if account is None:
        account = Account(channel=channel, external_id=external_id, created_at=now)
        session.add(account)
        session.flush()
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
