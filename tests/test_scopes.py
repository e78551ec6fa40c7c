"""Scope containment is one rule, in Python and in SQL: a scope is inside another when it is
the other or lies below it, so `1栋附楼` is not inside `1栋`, nor `东一网格二` inside `东一网格`."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from flows import register, scopes, votes
from storage.db import Database
from storage.models import Scope
from tests.conftest import START
from tests.harness import TestBot

LINES = [
    "community,area,grid,building,room,name,role",
    "梧桐社区,东片区,东一网格,1栋,101,楼长甲,building_leader",
    "梧桐社区,东片区,东一网格,1栋,102,住户乙,resident",
    "梧桐社区,东片区,东一网格,1栋附楼,1,住户丙,resident",
    "梧桐社区,东片区,东一网格,1栋附楼,2,住户丁,resident",
    "梧桐社区,东片区,东一网格二,5栋,501,住户戊,resident",
    "梧桐社区,东片区,东一网格,,,网格员己,grid_worker",
]


@pytest.fixture
def neighbours(db: Database) -> TestBot:
    with db.transaction() as session:
        register.import_file(session, ("\n".join(LINES) + "\n").encode(), START)
    return TestBot(db, START, locale="en")


@pytest.mark.parametrize(
    ("outer", "inner", "inside"),
    [
        ("梧桐社区/东片区/东一网格/1栋", "梧桐社区/东片区/东一网格/1栋", True),
        ("梧桐社区/东片区/东一网格", "梧桐社区/东片区/东一网格/1栋附楼", True),
        ("梧桐社区/东片区/东一网格/1栋", "梧桐社区/东片区/东一网格/1栋附楼", False),
        ("梧桐社区/东片区/东一网格", "梧桐社区/东片区/东一网格二/5栋", False),
        ("梧桐社区/东片区/东一网格/1栋", "梧桐社区/东片区/东一网格", False),
    ],
)
def test_one_rule_in_python_and_in_sql(neighbours: TestBot, outer: str, inner: str, inside: bool) -> None:
    assert scopes.contains(outer, inner) is inside
    with neighbours.db.transaction() as session:
        found = session.scalars(select(Scope.path).where(scopes.inside(Scope.path, outer))).all()
    assert (inner in found) is inside


def test_a_leader_of_1栋_does_not_see_or_count_1栋附楼(neighbours: TestBot) -> None:
    neighbours.say("/as 住户丙")
    neighbours.raise_issue("附楼水管漏水", scope="1")
    neighbours.say("/as 住户乙")
    neighbours.raise_issue("1栋电梯经常停运", scope="1")
    listed = neighbours.say("/issues", as_="楼长甲")
    assert "#2 1栋电梯经常停运" in listed and "附楼水管漏水" not in listed
    worker = neighbours.say("/issues", as_="网格员己")  # the grid holds both buildings
    assert "#1 附楼水管漏水" in worker and "#2 1栋电梯经常停运" in worker
    with neighbours.db.transaction() as session:
        building = session.scalar(select(Scope).where(Scope.name == "1栋"))
        assert building is not None and building.households == 2
        assert len(votes.eligible_units(session, building, "household")) == 2
