"""Invite codes still waiting to be used: what a building leader hands out."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from flows.export import community
from storage.models import Household, Invite, Person, Scope


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
