"""The scope hierarchy (community → area → grid → building), households, thresholds and rights.

A scope's ancestors are the prefixes of its path, so "is X inside Y" is a string test and
"every household under Y" one indexed query.
"""

from __future__ import annotations

from sqlalchemy import String, bindparam, func, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from flows import settings
from storage.models import Household, Person, Scope

LEVEL_UP = {"building": "grid", "grid": "area", "area": "community"}
OPEN_ROLES = ("resident", "building_leader", "grid_worker", "committee", "staff")


def contains(outer_path: str, inner_path: str) -> bool:
    """Whether a scope is the other or lies below it: `1栋附楼` is not inside `1栋`."""
    return inner_path == outer_path or inner_path.startswith(outer_path + "/")


def below(path: ColumnElement[str], outer_path: ColumnElement[str] | str) -> ColumnElement[bool]:
    """The scope of one path (as SQL) lies below the other's: `contains`, strictly, for queries.
    Compared by characters, not with LIKE (a name may hold `%` or `_`)."""
    outer = literal(outer_path, String()) if isinstance(outer_path, str) else outer_path
    return func.substr(path, 1, func.length(outer) + 1) == outer + "/"


def inside(path: ColumnElement[str], outer_path: ColumnElement[str] | str) -> ColumnElement[bool]:
    """`contains(outer_path, path)` as a condition on a path column, for queries."""
    return (path == outer_path) | below(path, outer_path)


def encloses(path: ColumnElement[str], inner_path: ColumnElement[str]) -> ColumnElement[bool]:
    """`contains(path, inner_path)` as a condition on a path column: the column's scope is the
    other or lies above it."""
    return (path == inner_path) | below(inner_path, path)


def within(inner: Scope, outer: Scope) -> bool:
    return contains(outer.path, inner.path)


def community_id(scope: Scope) -> int:
    return scope.community_id or scope.id


_BY_PATHS = select(Scope).where(Scope.path.in_(bindparam("paths", expanding=True)))


def ancestors(session: Session, scope: Scope) -> list[Scope]:
    """The scope and those above it, innermost first: its path's prefixes, in one query per session."""
    cache = session.info.setdefault("ancestors", {})
    if scope.path not in cache:
        parts = scope.path.split("/")
        paths = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        found = {s.path: s for s in session.scalars(_BY_PATHS, {"paths": paths})}
        cache[scope.path] = [found[p] for p in reversed(paths) if p in found]
    return list(cache[scope.path])


def recount(session: Session, community_id: int) -> None:
    """Store each scope's number of lived-in households (after the register changed)."""
    lived_in = dict(
        session.execute(
            select(Household.building_id, func.count(func.distinct(Household.id)))
            .join(Person, Person.household_id == Household.id)
            .where(Person.community_id == community_id, Person.moved_out.is_(False))
            .group_by(Household.building_id)
        ).all()
    )
    tree = session.scalars(
        select(Scope).where((Scope.id == community_id) | (Scope.community_id == community_id))
    ).all()
    totals = dict.fromkeys((s.path for s in tree), 0)
    paths = {s.id: s.path for s in tree}
    for building_id, count in lived_in.items():
        parts = paths[building_id].split("/")
        for i in range(len(parts)):
            totals["/".join(parts[: i + 1])] += count
    for scope in tree:
        if scope.households != totals[scope.path]:
            scope.households = totals[scope.path]


def threshold(session: Session, scope: Scope) -> int:
    """min(h, max(minimum, ⌈p·h/100⌉)) households, in integer arithmetic."""
    h = scope.households
    cid = community_id(scope)
    p = settings.get_int(session, cid, "support_percent")
    minimum = settings.get_int(session, cid, "support_minimum")
    return min(h, max(minimum, -(-p * h // 100)))


def roles(person: Person) -> set[str]:
    found = set(person.roles.split("|")) if person.roles else set()
    if person.household_id is not None:
        found.add("resident")
    return found


def home(session: Session, person: Person) -> Scope | None:
    """The building of the person's household: where they live and vote."""
    if person.household is None or person.moved_out:
        return None
    return person.household.building


def lives_in(session: Session, person: Person, scope: Scope) -> bool:
    building = home(session, person)
    return lives_at(building.path if building else None, scope)


def lives_at(home_path: str | None, scope: Scope) -> bool:
    """Whether a home (its building's path; None: no home) lies in the scope."""
    return home_path is not None and contains(scope.path, home_path)


def duty_building(session: Session, person: Person) -> Scope | None:
    """A building leader's building: their duty scope if it is one, else their home."""
    duty = session.get(Scope, person.duty_scope_id)
    if duty is not None and duty.level == "building":
        return duty
    return home(session, person)


def duty_grid(session: Session, person: Person) -> Scope | None:
    duty = session.get(Scope, person.duty_scope_id)
    for node in ancestors(session, duty) if duty else []:
        if node.level == "grid":
            return node
    return None


def leads(session: Session, person: Person, scope: Scope, allowed: tuple[str, ...]) -> bool:
    """Whether one of the person's duty roles (among `allowed`) covers the scope."""
    if person.moved_out:
        return False
    have = roles(person)
    if "committee" in allowed and "committee" in have and community_id(scope) == person.community_id:
        return True
    if "grid_worker" in allowed and "grid_worker" in have:
        grid = duty_grid(session, person)
        if grid is not None and within(scope, grid):
            return True
    if "building_leader" in allowed and "building_leader" in have:
        building = duty_building(session, person)
        if building is not None and within(scope, building):
            return True
    return False


def choices_for(session: Session, person: Person) -> list[Scope]:
    """The scopes a resident may raise an issue in: their building and every scope above it."""
    building = home(session, person)
    return ancestors(session, building) if building else []
