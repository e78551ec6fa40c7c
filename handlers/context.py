"""What a handler knows about the message it answers: who, in which language, and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.i18n import DEFAULT_LOCALE, Translator
from flows import settings
from flows.errors import Refused
from flows.issues import require_registered
from handlers.messages import Incoming
from storage.models import Account, Person


@dataclass
class Ctx:
    session: Session
    account: Account
    person: Person | None
    incoming: Incoming
    now: datetime
    t: Translator
    default_timezone: str = "Asia/Shanghai"

    @property
    def registered(self) -> Person:
        """The person behind the account, or a refusal telling them to /join."""
        return require_registered(self.person)

    def timezone(self, community_id: int) -> str:
        return str(settings.get(self.session, community_id, "timezone", self.default_timezone))


def locale_of(account: Account, person: Person | None, default: str = DEFAULT_LOCALE) -> str:
    return (person.locale if person and person.locale else None) or account.locale or default


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
    person = session.get(Person, account.person_id) if account.person_id else None
    return None if person is None or person.moved_out else person


def one_arg(text: str, usage: str) -> str:
    """The single argument of a command, or a refusal that shows the usage."""
    arg = text.strip()
    if not arg or len(arg.split()) != 1:
        raise Refused("Usage: {usage}", usage=usage)
    return arg
