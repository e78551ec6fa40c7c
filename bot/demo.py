"""`yishi demo`: a believable community (梧桐社区) in a fresh SQLite file, with issues under way.

Two areas, four grids, six buildings, 120 households and about 200 residents, with
building leaders, grid workers, committee members and staff; built through the same
register import and flows that real use goes through.
"""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from flows import actions, issues, people, register, settings, votes
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Account, Invite, Person, Scope
from storage.seal import BallotKey

COMMUNITY = "梧桐社区"
LAYOUT = {  # area → grid → buildings
    "东片区": {"东一网格": ["1栋", "2栋"], "东二网格": ["3栋"]},
    "西片区": {"西一网格": ["4栋", "5栋"], "西二网格": ["6栋"]},
}
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华建国红玉兰志文海燕春梅国庆小红晓东玉珍德福淑珍"
LEADERS = {
    "1栋": "孙丽华",
    "2栋": "马建国",
    "3栋": "朱红梅",
    "4栋": "胡德福",
    "5栋": "郭淑珍",
    "6栋": "何春燕",
}
NAMED = {  # people the demo's issues and the README's examples speak as
    ("1栋", "101"): "欧阳明",
    ("1栋", "102"): "谢委员",
    ("1栋", "103"): "李伟",
    ("2栋", "101"): "张秀英",
    ("4栋", "101"): "陈静",
    ("6栋", "101"): "杨明",
}
GRID_WORKERS = {"东一网格": "林晓东", "东二网格": "罗志文", "西一网格": "郑海燕", "西二网格": "梁国庆"}


def register_csv(seed: int = 7) -> str:
    rng = random.Random(seed)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(register.COLUMNS)
    used: set[str] = set(NAMED.values())

    def name() -> str:
        while True:
            n = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
            if n not in used and n not in LEADERS.values():
                used.add(n)
                return n

    for area, grids in LAYOUT.items():
        for grid, buildings in grids.items():
            for building in buildings:
                for floor in range(1, 6):
                    for unit in range(1, 5):
                        room = f"{floor}{unit:02d}"
                        members = [name() for _ in range(rng.choice((1, 1, 2, 2, 2, 3)))]
                        if (building, room) in NAMED:
                            members[0] = NAMED[building, room]
                        for person in members:
                            role = "resident"
                            if person == "谢委员":
                                role = "resident|committee"
                            w.writerow([COMMUNITY, area, grid, building, room, person, role])
                        if room == "201":
                            w.writerow(
                                [COMMUNITY, area, grid, building, room, LEADERS[building], "building_leader"]
                            )
            w.writerow([COMMUNITY, area, grid, "", "", GRID_WORKERS[grid], "grid_worker"])
    w.writerow([COMMUNITY, "", "", "", "", "周书记", "committee"])
    w.writerow([COMMUNITY, "", "", "", "", "唐主任", "committee"])
    w.writerow([COMMUNITY, "", "", "", "", "吴师傅", "staff"])
    w.writerow([COMMUNITY, "", "", "", "", "物业王经理", "staff"])
    return out.getvalue()


def _person(session, name: str) -> Person:  # type: ignore[no-untyped-def]
    person = session.scalar(select(Person).where(Person.name == name))
    assert person is not None, name
    return person


def _residents_of(session, building: str) -> list[Person]:  # type: ignore[no-untyped-def]
    scope = session.scalar(select(Scope).where(Scope.level == "building", Scope.name == building))
    people = session.scalars(select(Person).where(Person.household_id.is_not(None)).order_by(Person.id)).all()
    return [p for p in people if p.household and p.household.building_id == scope.id]


def _households(people: list[Person]) -> list[Person]:
    """One person of each household: the first in the register."""
    seen: dict[int | None, Person] = {}
    for person in people:
        seen.setdefault(person.household_id, person)
    return list(seen.values())


def _join_on_console(session, at: datetime) -> None:  # type: ignore[no-untyped-def]
    """Everyone with a role and about a third of the residents have joined, here on the console
    (as `/as NAME` binds them), so that what the bot sends them on its own is printed; the rest,
    like real neighbours without the bot, still count in thresholds and quorums."""
    named = {*NAMED.values(), *LEADERS.values(), *GRID_WORKERS.values()}
    for person in session.scalars(select(Person).order_by(Person.id)):
        if person.name in named or person.roles != "resident" or person.id % 3 == 0:
            account = Account(
                channel="console", external_id=f"person:{person.id}", person_id=person.id, created_at=at
            )
            session.add(account)
            session.flush()
            for invite in session.scalars(select(Invite).where(Invite.person_id == person.id)):
                invite.used_at, invite.used_by_account_id = at, account.id  # joined: not listed by `invites`


def create(url: str, key: BallotKey, now: datetime | None = None) -> None:
    """Make a fresh demo database at `url` (an SQLite file, replaced if it exists)."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    db = Database(url)
    upgrade(db.engine)
    now = now or datetime.now(UTC)
    with db.transaction() as session:
        register.import_file(session, register_csv().encode(), now - timedelta(days=30))
        community_scopes = {s.name: s for s in session.scalars(select(Scope))}
        # a demo is tried at any hour on the console, whose clock moves: reminders at their hours
        settings.put(session, community_scopes["梧桐社区"].id, "quiet_hours", "off")

        def raise_(author: str, scope: str, title: str, details: str, days_ago: float):  # type: ignore[no-untyped-def]
            at = now - timedelta(days=days_ago)
            issue, _ = issues.raise_issue(
                session, _person(session, author), community_scopes[scope].id, title, details, at
            )
            return issue, at

        lift, at = raise_("李伟", "1栋", "1栋电梯又坏了", "1栋的电梯这周又停运了,老人上下楼很困难。", 3)
        # a building of 20 households needs 3: one more supporter keeps it just short
        for p in _residents_of(session, "1栋")[5:6]:
            issues.support(session, people.resident(session, p.id), lift.id, at + timedelta(hours=5))

        parking, at = raise_(
            "张秀英", "东片区", "东片区晚上停车难", "晚上七点以后东片区几乎找不到车位,消防通道也被占用。", 6
        )
        for i, p in enumerate(_residents_of(session, "1栋")[8:14] + _residents_of(session, "3栋")[:4]):
            issues.support(session, people.resident(session, p.id), parking.id, at + timedelta(hours=2 + i))
        for i, (who, text) in enumerate(
            (
                ("孙丽华", "建议在东门外空地规划临时停车位。"),
                ("朱红梅", "3栋也一样,建议先统计各楼栋的车辆数。"),
                ("欧阳明", "消防通道必须先清出来。"),
            )
        ):
            issues.comment(
                session,
                people.resident(session, _person(session, who).id),
                parking.id,
                text,
                at + timedelta(days=1, hours=i),
            )

        # the parking issue is being voted on by 东片区's households
        votes.open_poll(
            session, _person(session, "周书记"), parking, kind="approve", labels=list(votes.APPROVE), k=1,
            closes_at=now + timedelta(days=2), secret=False, unit="household", now=now - timedelta(days=1), tz="Asia/Shanghai", key=key,
        )  # fmt: skip
        for p in (
            _households(_residents_of(session, "1栋"))[:7] + _households(_residents_of(session, "3栋"))[:4]
        ):
            votes.vote(session, p, parking.id, ["1"], now - timedelta(hours=20), key)

        # 4栋 decided to move its sorting point; the work is under way
        trash, at = raise_(
            "陈静", "4栋", "4栋垃圾分类投放点太远", "投放点在小区另一头,老人扔垃圾要走十分钟。", 12
        )
        neighbours = _residents_of(session, "4栋")
        for p in neighbours[1:4]:
            issues.support(session, people.resident(session, p.id), trash.id, at + timedelta(hours=3))
        poll = votes.open_poll(
            session, _person(session, "胡德福"), trash, kind="approve", labels=list(votes.APPROVE), k=1,
            closes_at=now - timedelta(days=6), secret=False, unit="household", now=now - timedelta(days=9), tz="Asia/Shanghai", key=key,
        )  # fmt: skip
        for n, p in enumerate(_households(neighbours)[:14]):
            votes.vote(session, p, trash.id, ["1" if n % 5 else "2"], now - timedelta(days=8), key)
        votes.close(session, poll, now - timedelta(days=6), None, key)
        item = actions.add(
            session,
            _person(session, "周书记"),
            trash.id,
            "吴师傅",
            "7d",
            "在4栋旁增设垃圾分类投放点",
            now - timedelta(days=5),
            "Asia/Shanghai",
        )
        actions.progress(
            session,
            _person(session, "吴师傅"),
            item.id,
            "40",
            "已选址，正在采购垃圾桶",
            now - timedelta(days=2),
        )

        light, at = raise_("杨明", "西片区", "西片区路灯不亮", "西门到6栋的路灯坏了一个月了。", 10)
        issues.refer(session, _person(session, "周书记"), light.id, "区城管局", at + timedelta(days=2))
        _join_on_console(session, now - timedelta(days=20))
