"""Naming people: by register name, or `NAME@BUILDING-ROOM` where two share a name."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload

from flows.errors import Refused
from storage.models import Account, Household, Person, Scope
from storage.prepared import Prepared


class Member(Protocol):
    """A person of the register as a vote needs them: a `Person`, or the plain values of one."""

    @property
    def id(self) -> int: ...
    @property
    def household_id(self) -> int | None: ...
    @property
    def community_id(self) -> int: ...
    @property
    def name(self) -> str: ...


class Resident(NamedTuple):
    """A person living in the register as a support or a comment needs them, in plain values read
    in one query (`resident`): loading the ORM's person with their home costs several times that."""

    id: int
    household_id: int | None
    community_id: int
    name: str
    roles: str
    home_path: str | None  # the path of the building they live in (`scopes.home`), None without a home


_RESIDENT = Prepared(
    select(Person.id, Person.household_id, Person.community_id, Person.name, Person.roles, Scope.path)
    .outerjoin(Household, Household.id == Person.household_id)
    .outerjoin(Scope, Scope.id == Household.building_id)
    .where(Person.id == bindparam("id"), Person.moved_out.is_(False))
)


def resident(session: Session, person_id: int) -> Resident | None:
    """The person, unless they moved out."""
    row = _RESIDENT.first(session, {"id": person_id})
    return None if row is None else Resident(*row)


def labelled(name: str, building: str | None, room: str | None) -> str:
    """`NAME@BUILDING-ROOM` for a person with a home, else the name."""
    return name if building is None or room is None else f"{name}@{building}-{room}"


def label(session: Session, person: Person) -> str:
    """`labelled`, for a person of the register."""
    household = session.get(Household, person.household_id) if person.household_id is not None else None
    building = session.get(Scope, household.building_id) if household else None
    return labelled(person.name, building.name if building else None, household.room if household else None)


def namesakes(session: Session, person: Person) -> bool:
    """Whether someone else living in the community has the same name."""
    return (
        session.scalar(
            select(Person.id).where(
                Person.community_id == person.community_id,
                Person.name == person.name,
                Person.id != person.id,
                Person.moved_out.is_(False),
            )
        )
        is not None
    )


def has_account(session: Session, person_id: int) -> bool:
    """Whether the person has a chat account: the bot can reach them."""
    return session.scalar(select(Account.id).where(Account.person_id == person_id).limit(1)) is not None


def find(session: Session, ref: str, community_id: int | None = None) -> Person:
    """The one person `ref` names among those living in the register (not moved out)."""
    ref = ref.strip()
    name, _, where = ref.partition("@")
    # with their home in the same query: who finds a person says where they live (`label`)
    query = (
        select(Person)
        .options(joinedload(Person.household).joinedload(Household.building))
        .where(Person.name == name.strip(), Person.moved_out.is_(False))
    )
    if community_id is not None:
        query = query.where(Person.community_id == community_id)
    found = list(session.scalars(query.order_by(Person.id)))
    if where:
        found = [p for p in found if label(session, p).partition("@")[2] == where.strip()]
    if not found:
        raise Refused("Nobody called {name} is in the register.", name=ref)
    if len(found) > 1:
        raise Refused(
            "Several people are called {name}: say which, as {choices}.",
            name=ref,
            choices=", ".join(label(session, p) for p in found),
        )
    return found[0]
