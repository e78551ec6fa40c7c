"""Invite codes: what a building leader hands out, and what binds a person's second channel.

A code is used once. A person bound on one channel asks there for a link code (`/link`, 关联)
and sends it on another (`加入 CODE` on WeChat) to bind that account to the same entry of the
register: a vote then counts once whichever channel it comes from. The committee can issue a
person's code anew (a lost slip) and unbind their accounts (a lost phone).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from flows import audit
from flows.export import community
from flows.register import new_code
from storage.models import Account, Household, Invite, Person, Scope


def open_codes(session: Session, community_name: str | None) -> list[tuple[str, str, str, str]]:
    root = community(session, community_name)
    rows = session.execute(
        select(Person.name, Scope.name, Household.room, Invite.code)
        .join(Invite, Invite.person_id == Person.id)
        .outerjoin(Household, Household.id == Person.household_id)
        .outerjoin(Scope, Scope.id == Household.building_id)
        .where(Person.community_id == root.id, Person.moved_out.is_(False))
        .where(Invite.used_at.is_(None), Invite.revoked.is_(False))
        .order_by(Scope.name, Household.room, Person.id)
    ).all()
    return [(name, building or "", room or "", code) for name, building, room, code in rows]


def reissue(session: Session, person: Person, now: datetime, actor_id: int | None = None) -> str:
    """A new code for the person; the ones not used yet stop working (one code of theirs at a time)."""
    session.execute(
        update(Invite)
        .where(Invite.person_id == person.id, Invite.used_at.is_(None), Invite.revoked.is_(False))
        .values(revoked=True)
    )
    code = new_code(session)
    session.add(Invite(code=code, person_id=person.id, created_at=now))
    audit.append(
        session, at=now, action="invite reissued", community_id=person.community_id, actor_id=actor_id,
        detail={"person": person.id},
    )  # fmt: skip
    return code


def unbind(session: Session, person: Person, now: datetime) -> list[str]:
    """The person's chat accounts no longer speak for them (a lost phone): the channels unbound.
    They bind again with a code (`reissue`)."""
    accounts = session.scalars(select(Account).where(Account.person_id == person.id)).all()
    for account in accounts:
        account.person_id = None
    if accounts:
        audit.append(
            session, at=now, action="accounts unbound", community_id=person.community_id,
            detail={"person": person.id, "channels": sorted(a.channel for a in accounts)},
        )  # fmt: skip
    return sorted(a.channel for a in accounts)


def channels(session: Session, person_id: int) -> list[str]:
    """The channels the person is bound on."""
    return sorted(set(session.scalars(select(Account.channel).where(Account.person_id == person_id))))
