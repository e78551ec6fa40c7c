"""The register (居民名册): import, re-import by (community, building, room, name), refusals.

A malformed file is refused whole, naming the line and the reason, and nothing is
written; so every refusal test compares a snapshot of every table before and after.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from flows import register
from flows.register import CODE_ALPHABET, RegisterInvalid
from storage.db import Database
from storage.models import Account, AuditLog, Base, DialogState, Household, Invite, Person, Scope
from tests.conftest import REGISTER, START

HEADER = "community,area,grid,building,room,name,role"
LINES = REGISTER.read_text(encoding="utf-8").splitlines()[1:]
LATER = START + timedelta(days=1)


def csv_bytes(*lines: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *lines]) + "\n").encode()


def without(name: str) -> list[str]:
    kept = [line for line in LINES if line.split(",")[5] != name]
    assert len(kept) == len(LINES) - 1, name
    return kept


def replaced(old: str, new: str) -> list[str]:
    assert old in LINES, old
    return [new if line == old else line for line in LINES]


def snapshot(db: Database) -> dict[str, list[tuple]]:
    """Every row of every table."""
    with db.transaction() as session:
        return {
            t.name: sorted(map(tuple, session.execute(select(t)).all()), key=repr)
            for t in Base.metadata.sorted_tables
        }


def do_import(db: Database, data: bytes, now: datetime = START) -> register.Summary:
    with db.transaction() as session:
        return register.import_file(session, data, now)


def person(db: Database, name: str) -> Person:
    with db.transaction() as session:
        found = session.scalars(select(Person).where(Person.name == name)).all()
        assert len(found) == 1, name
        return found[0]


def invites_of(db: Database, person_id: int) -> list[Invite]:
    with db.transaction() as session:
        return list(
            session.scalars(select(Invite).where(Invite.person_id == person_id).order_by(Invite.created_at))
        )


def scope_path(db: Database, scope_id: int | None) -> str:
    with db.transaction() as session:
        scope = session.get(Scope, scope_id)
        assert scope is not None
        return scope.path


def home(db: Database, p: Person) -> str | None:
    with db.transaction() as session:
        if p.household_id is None:
            return None
        household = session.get(Household, p.household_id)
        assert household is not None
        return f"{household.building.path}/{household.room}"


def others_invites(db: Database, *but: int) -> dict[str, tuple]:
    with db.transaction() as session:
        invites = session.scalars(select(Invite).where(Invite.person_id.not_in(but)))
        return {i.code: (i.person_id, i.revoked, i.used_at) for i in invites}


def register_audits(db: Database) -> list[tuple[int | None, dict]]:
    with db.transaction() as session:
        rows = session.execute(
            select(AuditLog.community_id, AuditLog.detail)
            .where(AuditLog.action == "register")
            .order_by(AuditLog.id)
        ).all()
        return [tuple(r) for r in rows]


# --- a first import ---------------------------------------------------------------------


def test_import_creates_scopes_households_people_and_invites(db: Database) -> None:
    summary = do_import(db, REGISTER.read_bytes())
    assert (summary.added, summary.updated, summary.unchanged, summary.moved_out) == (20, 0, 0, 0)
    with db.transaction() as session:
        scopes = {s.path: s for s in session.scalars(select(Scope))}
        households = session.scalars(select(Household)).all()
        people = session.scalars(select(Person)).all()
        invites = session.scalars(select(Invite)).all()
    assert sorted(scopes) == sorted(
        [
            "梧桐社区",
            "梧桐社区/东片区",
            "梧桐社区/西片区",
            "梧桐社区/东片区/东一网格",
            "梧桐社区/东片区/东二网格",
            "梧桐社区/西片区/西一网格",
            "梧桐社区/东片区/东一网格/1栋",
            "梧桐社区/东片区/东一网格/2栋",
            "梧桐社区/东片区/东二网格/3栋",
            "梧桐社区/西片区/西一网格/4栋",
        ]
    )
    root = scopes["梧桐社区"]
    assert (root.level, root.parent_id, root.community_id) == ("community", None, None)
    building = scopes["梧桐社区/东片区/东一网格/1栋"]
    assert building.level == "building" and building.name == "1栋"
    assert building.parent_id == scopes["梧桐社区/东片区/东一网格"].id
    assert building.community_id == root.id
    assert {s.level for s in scopes.values() if s.id != root.id and s.community_id != root.id} == set()

    assert len(households) == 14  # 1栋 101–106, 2栋 201–203, 3栋 301–302, 4栋 401–403
    assert sum(1 for h in households if h.building_id == building.id) == 6

    assert len(people) == 20 and not any(p.moved_out for p in people)
    assert {p.community_id for p in people} == {root.id}
    assert len(invites) == 20 and {i.person_id for i in invites} == {p.id for p in people}
    for invite in invites:
        assert len(invite.code) == 8 and set(invite.code) <= set(CODE_ALPHABET)
        assert (invite.used_at, invite.revoked, invite.created_at) == (None, False, START)

    xie = person(db, "谢委员")
    assert xie.roles == "resident|committee"
    assert home(db, xie) == "梧桐社区/东片区/东一网格/1栋/106"
    assert xie.household_id == person(db, "刘洋").household_id  # two people, one household
    grid_worker = person(db, "林晓东")
    assert (grid_worker.household_id, scope_path(db, grid_worker.duty_scope_id)) == (
        None,
        "梧桐社区/东片区/东一网格",
    )
    secretary = person(db, "周书记")
    assert (secretary.household_id, scope_path(db, secretary.duty_scope_id)) == (None, "梧桐社区")
    leader = person(db, "孙丽华")
    assert leader.roles == "building_leader"
    assert scope_path(db, leader.duty_scope_id) == "梧桐社区/东片区/东一网格/1栋"
    # two people called 李伟, in different buildings, are two people
    with db.transaction() as session:
        assert len(session.scalars(select(Person).where(Person.name == "李伟")).all()) == 2

    assert register_audits(db) == [(root.id, {"added": 20, "updated": 0, "moved_out": 0})]


def test_reimporting_the_same_file_changes_nothing(db: Database) -> None:
    do_import(db, REGISTER.read_bytes())
    before = snapshot(db)
    summary = do_import(db, REGISTER.read_bytes(), LATER)
    assert (summary.added, summary.updated, summary.unchanged, summary.moved_out) == (0, 0, 20, 0)
    assert snapshot(db) == before


def test_the_same_register_saved_differently_changes_nothing(db: Database) -> None:
    """A spreadsheet saves with a BOM, CRLF and stray spaces, and sorts rows its own way."""
    do_import(db, REGISTER.read_bytes())
    before = snapshot(db)
    rows = LINES[:]
    random.Random(3).shuffle(rows)
    padded = [",".join(f" {v} " if v else v for v in line.split(",")) for line in rows]
    data = "\ufeff" + "\r\n".join([HEADER, *padded, ",,,,,,"]) + "\r\n"
    summary = do_import(db, data.encode(), LATER)
    assert (summary.added, summary.updated, summary.unchanged, summary.moved_out) == (0, 0, 20, 0)
    assert snapshot(db) == before


# --- re-import with changes -------------------------------------------------------------


def test_a_changed_row_updates_the_person_in_place(db: Database) -> None:
    do_import(db, REGISTER.read_bytes())
    wang, lin = person(db, "王芳"), person(db, "林晓东")
    codes = {p.id: [i.code for i in invites_of(db, p.id)] for p in (wang, lin)}
    lines = replaced(
        "梧桐社区,东片区,东一网格,1栋,103,王芳,resident",
        "梧桐社区,东片区,东一网格,1栋,103,王芳,resident|building_leader",
    )
    lines = [
        "梧桐社区,东片区,东二网格,,,林晓东,grid_worker" if line.endswith(",林晓东,grid_worker") else line
        for line in lines
    ]
    summary = do_import(db, csv_bytes(*lines), LATER)
    assert (summary.added, summary.updated, summary.unchanged, summary.moved_out) == (0, 2, 18, 0)

    wang2, lin2 = person(db, "王芳"), person(db, "林晓东")
    assert (wang2.id, wang2.roles, wang2.household_id) == (
        wang.id,
        "resident|building_leader",
        wang.household_id,
    )
    assert (lin2.id, scope_path(db, lin2.duty_scope_id)) == (lin.id, "梧桐社区/东片区/东二网格")
    assert not wang2.moved_out and not lin2.moved_out
    # the same people keep the same invites: nothing to hand out again
    assert {p.id: [i.code for i in invites_of(db, p.id)] for p in (wang2, lin2)} == codes
    with db.transaction() as session:
        assert len(session.scalars(select(Person)).all()) == 20
    assert register_audits(db)[-1][1] == {"added": 0, "updated": 2, "moved_out": 0}


def test_a_building_moved_to_another_grid_moves_its_households(db: Database) -> None:
    do_import(db, REGISTER.read_bytes())
    zhao = person(db, "赵敏")
    lines = [line.replace("东二网格,3栋", "东一网格,3栋") for line in LINES]
    summary = do_import(db, csv_bytes(*lines), LATER)
    assert (summary.updated, summary.moved_out, summary.added) == (2, 0, 0)
    zhao2 = person(db, "赵敏")
    assert zhao2.id == zhao.id and not zhao2.moved_out
    assert home(db, zhao2) == "梧桐社区/东片区/东一网格/3栋/301"
    assert scope_path(db, zhao2.duty_scope_id) == "梧桐社区/东片区/东一网格/3栋"


def test_a_new_room_is_a_new_register_entry(db: Database) -> None:
    """People are matched by (community, building, room, name): a move is out of one room, into another."""
    do_import(db, REGISTER.read_bytes())
    old = person(db, "张强")
    lines = replaced(
        "梧桐社区,东片区,东一网格,1栋,104,张强,resident", "梧桐社区,东片区,东一网格,2栋,204,张强,resident"
    )
    summary = do_import(db, csv_bytes(*lines), LATER)
    assert (summary.added, summary.updated, summary.unchanged, summary.moved_out) == (1, 0, 19, 1)
    with db.transaction() as session:
        both = {p.id: p for p in session.scalars(select(Person).where(Person.name == "张强"))}
    assert both[old.id].moved_out and home(db, both[old.id]) == "梧桐社区/东片区/东一网格/1栋/104"
    (new,) = [p for p in both.values() if p.id != old.id]
    assert not new.moved_out and home(db, new) == "梧桐社区/东片区/东一网格/2栋/204"
    assert [i.revoked for i in invites_of(db, old.id)] == [True]
    assert [(i.revoked, i.used_at) for i in invites_of(db, new.id)] == [(False, None)]


def test_a_person_missing_from_the_file_is_moved_out(db: Database) -> None:
    do_import(db, REGISTER.read_bytes())
    wang = person(db, "王芳")
    with db.transaction() as session:
        li_102 = session.scalar(select(Person).where(Person.register_key == "1栋|102|李伟"))
        assert li_102 is not None
        account_w = Account(channel="telegram", external_id="1001", person_id=wang.id, created_at=START)
        account_l = Account(channel="wechat", external_id="oLi", person_id=li_102.id, created_at=START)
        session.add_all([account_w, account_l])
        session.flush()
        session.add(
            DialogState(account_id=account_w.id, flow="raise", step="title", data={}, expires_at=LATER)
        )
        used = session.scalar(select(Invite).where(Invite.person_id == li_102.id))
        assert used is not None
        used.used_at, used.used_by_account_id = START, account_l.id
        ids = {"wang": wang.id, "li": li_102.id, "aw": account_w.id, "al": account_l.id}
    others_before = others_invites(db, ids["wang"], ids["li"])

    lines = [line for line in without("王芳") if line != "梧桐社区,东片区,东一网格,1栋,102,李伟,resident"]
    summary = do_import(db, csv_bytes(*lines), LATER)
    assert (summary.added, summary.updated, summary.unchanged, summary.moved_out) == (0, 0, 18, 2)

    with db.transaction() as session:
        gone = {p.id: p for p in session.scalars(select(Person).where(Person.moved_out.is_(True)))}
        assert set(gone) == {ids["wang"], ids["li"]}  # the other 李伟 (4栋403) stays
        assert session.get(Account, ids["aw"]).person_id is None
        assert session.get(Account, ids["al"]).person_id is None
        assert session.scalars(select(DialogState)).all() == []
        wang_invites = session.scalars(select(Invite).where(Invite.person_id == ids["wang"])).all()
        li_invites = session.scalars(select(Invite).where(Invite.person_id == ids["li"])).all()
        assert [(i.revoked, i.used_at) for i in wang_invites] == [(True, None)]
        # a used invite is history: it stays as it was
        assert [(i.revoked, i.used_at, i.used_by_account_id) for i in li_invites] == [
            (False, START, ids["al"])
        ]
        # the person rows (and their households) stay: history is kept
        assert gone[ids["wang"]].household_id is not None
    assert others_invites(db, ids["wang"], ids["li"]) == others_before
    assert register_audits(db)[-1][1] == {"added": 0, "updated": 0, "moved_out": 2}

    # importing the shorter file again changes nothing more
    before = snapshot(db)
    summary = do_import(db, csv_bytes(*lines), LATER + timedelta(days=1))
    assert (summary.unchanged, summary.moved_out) == (18, 0)
    assert snapshot(db) == before


def test_a_person_added_again_comes_back_with_a_new_invite(db: Database) -> None:
    do_import(db, REGISTER.read_bytes())
    wang = person(db, "王芳")
    (old_code,) = [i.code for i in invites_of(db, wang.id)]
    do_import(db, csv_bytes(*without("王芳")), LATER)
    assert person(db, "王芳").moved_out

    summary = do_import(db, REGISTER.read_bytes(), LATER + timedelta(days=1))
    assert (summary.added, summary.updated, summary.unchanged, summary.moved_out) == (0, 1, 19, 0)
    back = person(db, "王芳")
    assert (back.id, back.moved_out, back.household_id) == (wang.id, False, wang.household_id)
    invites = {i.code: i for i in invites_of(db, wang.id)}
    assert invites[old_code].revoked  # the old code stays dead
    (new_code,) = [c for c in invites if c != old_code]
    assert (invites[new_code].revoked, invites[new_code].used_at) == (False, None)
    assert invites[new_code].created_at == LATER + timedelta(days=1)


def test_only_the_communities_of_the_file_are_touched(db: Database) -> None:
    do_import(db, REGISTER.read_bytes())
    other = csv_bytes("银杏社区,南片区,南一网格,9栋,901,钱多多,resident")
    summary = do_import(db, other, LATER)
    assert (summary.added, summary.moved_out) == (1, 0)
    with db.transaction() as session:
        assert session.scalars(select(Person).where(Person.moved_out.is_(True))).all() == []
        assert len(session.scalars(select(Scope).where(Scope.level == "community")).all()) == 2


def test_each_community_gets_its_own_audit_row_with_its_own_counts(db: Database) -> None:
    ginkgo = [
        "银杏社区,南片区,南一网格,9栋,901,钱多多,resident",
        "银杏社区,南片区,南一网格,9栋,902,孙少少,resident",
    ]
    do_import(db, csv_bytes(*LINES, *ginkgo))
    with db.transaction() as session:
        ids = {s.name: s.id for s in session.scalars(select(Scope).where(Scope.level == "community"))}
    assert register_audits(db) == [
        (ids["梧桐社区"], {"added": 20, "updated": 0, "moved_out": 0}),
        (ids["银杏社区"], {"added": 2, "updated": 0, "moved_out": 0}),
    ]
    # a change in 银杏社区 only: 梧桐社区's record gets no row
    do_import(db, csv_bytes(*LINES, ginkgo[0]), LATER)
    assert register_audits(db)[2:] == [(ids["银杏社区"], {"added": 0, "updated": 0, "moved_out": 1})]


# --- refusals ---------------------------------------------------------------------------

GOOD = "梧桐社区,东片区,东一网格,1栋,101,欧阳明,resident"
BAD_FILES = {
    "missing columns": (b"community,area,grid,building,room,name\n" + GOOD[: GOOD.rfind(",")].encode(), 1, "Missing columns: role"),
    "unknown role": (csv_bytes(GOOD, "梧桐社区,东片区,东一网格,1栋,102,李伟,mayor"), 3, "Unknown role mayor"),
    "unknown role among two": (csv_bytes(GOOD, "梧桐社区,,,,,周书记,committee|boss"), 3, "Unknown role boss"),
    "empty role": (csv_bytes(GOOD, "梧桐社区,,,,,周书记,"), 3, "role is empty"),
    "duplicate person": (
        csv_bytes(GOOD, "梧桐社区,东片区,东一网格,1栋,102,李伟,resident", " 梧桐社区,东片区,东一网格,1栋,101,欧阳明 ,building_leader"),
        4,
        "already on line 2",
    ),
    "too few fields": (csv_bytes(GOOD, "梧桐社区,东片区,东一网格,1栋,102,李伟"), 3, "does not have the 7 fields"),
    "too many fields": (csv_bytes(GOOD, "梧桐社区,东片区,东一网格,1栋,102,李伟,resident,extra"), 3, "does not have the 7 fields"),
    "resident without a home": (csv_bytes(GOOD, "梧桐社区,东片区,东一网格,,,李伟,resident"), 3, "needs a building and room"),
    "leader without a home": (csv_bytes(GOOD, "梧桐社区,东片区,东一网格,,,孙丽华,building_leader"), 3, "needs a building and room"),
    "building without a grid": (csv_bytes(GOOD, "梧桐社区,东片区,,5栋,501,李伟,resident"), 3, "A building needs its area and grid."),
    "room without a building": (csv_bytes(GOOD, "梧桐社区,东片区,东一网格,,102,李伟,resident"), 3, "building and room go together"),
    "grid worker without a grid": (csv_bytes(GOOD, "梧桐社区,,,,,林晓东,grid_worker"), 3, "A grid worker needs a grid."),
    "no name": (csv_bytes(GOOD, "梧桐社区,东片区,东一网格,1栋,102,  ,resident"), 3, "name is empty"),
    "no community": (csv_bytes(GOOD, ",东片区,东一网格,1栋,102,李伟,resident"), 3, "community is empty"),
    "slash in a scope": (csv_bytes(GOOD, "梧桐社区,东片区,东一/二网格,1栋,102,李伟,resident"), 3, "may not contain '/'"),
    "building under two grids": (csv_bytes(GOOD, "梧桐社区,东片区,东二网格,1栋,102,李伟,resident"), 3, "under another grid on line 2"),
    "name too long": (csv_bytes(GOOD, "梧桐社区,东片区,东一网格,1栋,102," + "李" * 101 + ",resident"), 3, "longer than 100"),
    "room too long for the schema": (csv_bytes(GOOD, "梧桐社区,东片区,东一网格,1栋," + "1" * 33 + ",李伟,resident"), 3, "room is longer than 32"),
    "UTF-16 bytes": ((HEADER + "\n" + GOOD + "\n").encode("utf-16"), 1, "neither UTF-8 nor GB18030"),
    "GBK bytes further down": (HEADER.encode() + b"\n" + GOOD.encode() + b"\n" + GOOD.replace("101", "102").encode("gbk") + b"\n", 3, "not UTF-8"),
    "empty file": (b"", 1, "The file is empty."),
    "header only": (csv_bytes(), 1, "no people"),
    "blank lines only": (csv_bytes("", ",,,,,,", ""), 1, "no people"),
}  # fmt: skip


def message(problem: tuple[int, object]) -> tuple[int, str]:
    line, refusal = problem
    return line, refusal.msgid.format(**refusal.params)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("data", "line", "reason"), list(BAD_FILES.values()), ids=list(BAD_FILES))
def test_a_malformed_file_is_refused_whole_and_nothing_is_written(
    db: Database, data: bytes, line: int, reason: str
) -> None:
    do_import(db, REGISTER.read_bytes())
    before = snapshot(db)
    with pytest.raises(RegisterInvalid) as refused:
        do_import(db, data, LATER)
    problems = [message(p) for p in refused.value.problems]
    assert any(n == line and reason in text for n, text in problems), problems
    assert snapshot(db) == before


def test_a_malformed_file_is_refused_on_an_empty_database_too(db: Database) -> None:
    before = snapshot(db)
    with pytest.raises(RegisterInvalid):
        do_import(db, csv_bytes(*LINES, "梧桐社区,东片区,东一网格,1栋,107,新来的,tenant"))
    assert snapshot(db) == before
    assert all(rows == [] for table, rows in before.items() if table != "audit_chains")


def test_every_bad_line_is_named(db: Database) -> None:
    data = csv_bytes(
        GOOD,
        "梧桐社区,东片区,东一网格,1栋,102,李伟,mayor",
        *LINES[2:5],
        "梧桐社区,东片区,,5栋,501,王五,resident",
    )
    with pytest.raises(RegisterInvalid) as refused:
        do_import(db, data)
    assert sorted({line for line, _ in refused.value.problems}) == [3, 7]


def test_line_numbers_count_physical_lines(db: Database) -> None:
    """A quoted field with a line break in it: the next line's number is still the file's."""
    data = csv_bytes(
        '梧桐社区,东片区,东一网格,1栋,101,"欧阳\n明",resident', "梧桐社区,东片区,东一网格,1栋,102,李伟,mayor"
    )
    with pytest.raises(RegisterInvalid) as refused:
        do_import(db, data)
    assert [line for line, _ in refused.value.problems] == [4]


def test_times_are_kept_in_utc(db: Database) -> None:
    shanghai = START.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    do_import(db, REGISTER.read_bytes(), shanghai)
    with db.transaction() as session:
        created = set(session.scalars(select(Invite.created_at)))
    assert created == {START} and all(at.utcoffset() == timedelta(0) for at in created)
    assert START.tzinfo is UTC
