"""The register (居民名册): import from a workbook or CSV, matched by (community, building, room, name).

A file is checked whole before anything is written: one bad line refuses it all, naming
the line and the reason. Re-importing the same file changes nothing; people of the file's
communities missing from it are marked moved out (history kept, accounts unbound).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from flows import audit, scopes, sheets
from flows.errors import Refused
from storage.models import Account, DialogState, Household, Invite, Person, Scope

COLUMNS = ("community", "area", "grid", "building", "room", "name", "role")
ROLES = ("resident", "building_leader", "grid_worker", "committee", "staff")
HOME_ROLES = ("resident", "building_leader")
FIELD_MAX = 100
# the widths of the columns they are stored in (households.room is String(32)): a longer
# value must be refused here, with its line, not fail the insert on PostgreSQL
MAX_LENGTH = {k: 32 if k == "room" else FIELD_MAX for k in COLUMNS}
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass(frozen=True)
class Row:
    line: int
    community: str
    area: str
    grid: str
    building: str
    room: str
    name: str
    roles: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.building}|{self.room}|{self.name}"

    @property
    def path(self) -> list[str]:
        return [p for p in (self.community, self.area, self.grid, self.building) if p]


@dataclass
class RegisterInvalid(Exception):
    """The file is refused; each problem is (line, refusal)."""

    problems: list[tuple[int, Refused]] = field(default_factory=list)


@dataclass
class Summary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    moved_out: int = 0
    # who: (added | updated | moved out, "NAME BUILDING ROOM"), for a dry run to show
    changes: list[tuple[str, str]] = field(default_factory=list)


def _check_row(line: int, values: dict[str, str]) -> tuple[Row | None, list[Refused]]:
    problems = []
    v = {k: " ".join((values.get(k) or "").split()) for k in COLUMNS}
    for k, text in v.items():
        if len(text) > MAX_LENGTH[k]:
            problems.append(Refused("{column} is longer than {max} characters.", column=k, max=MAX_LENGTH[k]))
        if "/" in text and k in ("community", "area", "grid", "building"):
            problems.append(Refused("{column} may not contain '/'.", column=k))
    roles = tuple(r.strip() for r in v["role"].split("|") if r.strip())
    for k in ("community", "name"):
        if not v[k]:
            problems.append(Refused("{column} is empty.", column=k))
    if not roles:
        problems.append(Refused("role is empty; use {roles}.", roles=", ".join(ROLES)))
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        problems.append(Refused("Unknown role {role}; use {roles}.", role=unknown[0], roles=", ".join(ROLES)))
    if v["grid"] and not v["area"]:
        problems.append(Refused("A grid needs its area."))
    if v["building"] and not (v["area"] and v["grid"]):
        problems.append(Refused("A building needs its area and grid."))
    if bool(v["building"]) != bool(v["room"]):
        problems.append(Refused("building and room go together: give both or neither."))
    if set(roles) & set(HOME_ROLES) and not v["room"]:
        problems.append(Refused("A resident or building leader needs a building and room."))
    if "grid_worker" in roles and not v["grid"]:
        problems.append(Refused("A grid worker needs a grid."))
    if problems:
        return None, problems
    row = Row(line, v["community"], v["area"], v["grid"], v["building"], v["room"], v["name"], roles)
    return row, []


def parse(data: bytes) -> list[Row]:
    """The people of a register file (a workbook or CSV: `flows.sheets`), each checked; refused whole."""
    try:
        table = sheets.read(data)
    except sheets.Unreadable as exc:
        raise RegisterInvalid(exc.problems) from None
    header = table.header
    if not any(header):
        raise RegisterInvalid([(1, Refused("The file is empty."))])
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise RegisterInvalid(
            [
                (
                    1,
                    Refused(
                        "Missing columns: {missing}. The file's header is {header}; it must be {expected}.",
                        missing=", ".join(missing),
                        header=",".join(header) or "-",
                        expected=",".join(COLUMNS),
                    ),
                )
            ]
        )
    rows: list[Row] = []
    problems: list[tuple[int, Refused]] = []
    seen: dict[tuple[str, str], int] = {}
    building_at: dict[tuple[str, str], tuple[str, str, int]] = {}
    try:
        for line, cells in table.rows:
            if not cells:  # an empty line
                continue
            if len(cells) != len(header):
                problems.append(
                    (line, Refused("The line does not have the {m} fields of the header.", m=len(header)))
                )
                continue
            if not any(c.strip() for c in cells):
                continue
            values = dict(zip(header, cells, strict=True))
            lost = [v.refusal for k, v in values.items() if k in COLUMNS and isinstance(v, sheets.Refusal)]
            if lost:  # a cell of the register that Excel changed: only that is said of the row
                problems.extend((line, refusal) for refusal in lost)
                continue
            row, errs = _check_row(line, values)
            problems.extend((line, e) for e in errs)
            if row is None:
                continue
            key = (row.community, row.key)
            if key in seen:
                problems.append(
                    (line, Refused("The same person is already on line {other}.", other=seen[key]))
                )
                continue
            seen[key] = line
            if row.building:
                where = building_at.setdefault((row.community, row.building), (row.area, row.grid, line))
                if where[:2] != (row.area, row.grid):
                    problems.append(
                        (
                            line,
                            Refused(
                                "Building {b} is under another grid on line {other}.",
                                b=row.building,
                                other=where[2],
                            ),
                        )
                    )
                    continue
            rows.append(row)
    except sheets.Unreadable as exc:  # the rest of the file cannot be read
        problems.extend(exc.problems)
    if problems:
        raise RegisterInvalid(sorted(problems, key=lambda p: p[0]))
    if not rows:
        raise RegisterInvalid([(1, Refused("The file has no people in it."))])
    return rows


def new_code(session: Session) -> str:
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
        if session.get(Invite, code) is None:
            return code


class _Scopes:
    """Get-or-create scopes by path, cached for one import."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.cache: dict[str, Scope] = {}

    def get(self, parts: list[str]) -> Scope:
        path = "/".join(parts)
        if path in self.cache:
            return self.cache[path]
        scope = self.session.scalar(select(Scope).where(Scope.path == path))
        if scope is None:
            parent = self.get(parts[:-1]) if len(parts) > 1 else None
            community = parent.community_id or parent.id if parent else None
            level = ("community", "area", "grid", "building")[len(parts) - 1]
            scope = Scope(
                name=parts[-1],
                path=path,
                level=level,
                parent_id=parent.id if parent else None,
                community_id=community,
            )
            self.session.add(scope)
            self.session.flush()
        self.cache[path] = scope
        return scope


def apply(session: Session, rows: list[Row], now: datetime) -> Summary:
    # counted per community: each community's audit row gets its own counts, not the file's
    own: dict[int, Summary] = {}
    tree = _Scopes(session)
    keys_by_community: dict[int, set[str]] = {}
    for row in rows:
        community = tree.get([row.community])
        mine = own.setdefault(community.id, Summary())
        duty = tree.get(row.path)
        household_id = None
        if row.room:
            building = tree.get(row.path)
            household = session.scalar(
                select(Household).where(Household.building_id == building.id, Household.room == row.room)
            )
            if household is None:
                household = Household(building_id=building.id, room=row.room)
                session.add(household)
                session.flush()
            household_id = household.id
        keys_by_community.setdefault(community.id, set()).add(row.key)
        roles = "|".join(row.roles)
        person = session.scalar(
            select(Person).where(Person.community_id == community.id, Person.register_key == row.key)
        )
        if person is None:
            person = Person(
                community_id=community.id, register_key=row.key, name=row.name, roles=roles,
                household_id=household_id, duty_scope_id=duty.id, moved_out=False,
            )  # fmt: skip
            session.add(person)
            session.flush()
            session.add(Invite(code=new_code(session), person_id=person.id, created_at=now))
            mine.added += 1
            mine.changes.append(("added", _who(row.name, row.building, row.room)))
            continue
        wanted = {"roles": roles, "household_id": household_id, "duty_scope_id": duty.id, "moved_out": False}
        if all(getattr(person, k) == v for k, v in wanted.items()):
            mine.unchanged += 1
            continue
        if person.moved_out:
            session.add(Invite(code=new_code(session), person_id=person.id, created_at=now))
        for k, v in wanted.items():
            setattr(person, k, v)
        mine.updated += 1
        mine.changes.append(("updated", _who(row.name, row.building, row.room)))
    for community_id, keys in keys_by_community.items():
        mine = own[community_id]
        gone = session.scalars(
            select(Person).where(Person.community_id == community_id, Person.moved_out.is_(False))
        ).all()
        for person in gone:
            if person.register_key not in keys:
                move_out(session, person)
                mine.moved_out += 1
                home = person.household
                mine.changes.append(
                    (
                        "moved out",
                        _who(person.name, home.building.name if home else "", home.room if home else ""),
                    )
                )
        session.flush()
        scopes.recount(session, community_id)
        if mine.added or mine.updated or mine.moved_out:
            audit.append(
                session, at=now, action="register", community_id=community_id,
                detail={"added": mine.added, "updated": mine.updated, "moved_out": mine.moved_out},
            )  # fmt: skip
    counts = (
        sum(getattr(s, f) for s in own.values()) for f in ("added", "updated", "unchanged", "moved_out")
    )
    return Summary(*counts, changes=[c for s in own.values() for c in s.changes])


def _who(name: str, building: str, room: str) -> str:
    return " ".join(p for p in (name, building, room) if p)


def move_out(session: Session, person: Person) -> None:
    """History stays; the accounts are unbound, their dialogs dropped, open invites revoked."""
    person.moved_out = True
    accounts = select(Account.id).where(Account.person_id == person.id)
    session.execute(delete(DialogState).where(DialogState.account_id.in_(accounts)))
    session.execute(update(Account).where(Account.person_id == person.id).values(person_id=None))
    session.execute(
        update(Invite).where(Invite.person_id == person.id, Invite.used_at.is_(None)).values(revoked=True)
    )


def import_file(session: Session, data: bytes, now: datetime) -> Summary:
    return apply(session, parse(data), now)
