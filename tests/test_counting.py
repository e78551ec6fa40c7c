"""The counting rules as a table of cases from DESIGN.md's formulas."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.counting import DEFAULT_RULES, Rule, decide
from flows.errors import Refused

R = DEFAULT_RULES


@pytest.mark.parametrize(
    ("eligible", "turnout", "votes", "major", "outcome"),
    [
        (8, 5, {1: 3, 2: 2, 3: 0}, False, "passed"),  # DESIGN: E=8, T=5, A=3
        (8, 5, {1: 2, 2: 0, 3: 3}, False, "rejected"),  # A=2 with 3 abstaining
        (8, 4, {1: 4, 2: 0, 3: 0}, False, "no_quorum"),  # 2·4 > 8 fails: just missed
        (9, 6, {1: 4, 2: 2, 3: 0}, True, "passed"),  # major: 3·6 ≥ 2·9, 3·4 ≥ 2·6
        (9, 5, {1: 5, 2: 0, 3: 0}, True, "no_quorum"),  # major quorum just missed: 15 < 18
        (9, 6, {1: 3, 2: 3, 3: 0}, True, "rejected"),  # major pass missed: 9 < 12
        (7, 4, {1: 2, 2: 2, 3: 0}, False, "rejected"),  # a tie is not 过半数
        (7, 4, {1: 3, 2: 0, 3: 1}, False, "passed"),  # quorum just met: 8 > 7
        (200, 101, {1: 51, 2: 50, 3: 0}, False, "passed"),  # people without accounts count in E
        (200, 100, {1: 100, 2: 0, 3: 0}, False, "no_quorum"),
    ],
)
def test_approve(eligible: int, turnout: int, votes: dict[int, int], major: bool, outcome: str) -> None:
    assert decide("approve", eligible, turnout, votes, R, major).outcome == outcome


@pytest.mark.parametrize(
    ("votes", "turnout", "outcome", "adopted"),
    [
        ({1: 4, 2: 1, 3: 1}, 6, "passed", (1,)),
        ({1: 3, 2: 3}, 6, "rejected", ()),  # a tie for the lead
        ({1: 3, 2: 2, 3: 1}, 6, "rejected", ()),  # leads, but 2·3 > 6 fails
        ({1: 4, 2: 0}, 7, "passed", (1,)),  # blank ballots are not counted as options
    ],
)
def test_single(votes: dict[int, int], turnout: int, outcome: str, adopted: tuple[int, ...]) -> None:
    result = decide("single", 10, turnout, votes, R, major=False)
    assert (result.outcome, result.adopted) == (outcome, adopted)


def test_multiple_adopts_at_most_k_most_votes_first() -> None:
    result = decide("multiple", 10, 8, {1: 5, 2: 7, 3: 6, 4: 2}, R, major=False, k=2)
    assert (result.outcome, result.adopted) == ("passed", (2, 3))
    assert decide("multiple", 10, 8, {1: 4, 2: 3}, R, major=False, k=2).outcome == "rejected"
    assert decide("multiple", 9, 6, {1: 4, 2: 3}, R, major=True, k=2).adopted == (1,)


def test_rules_parse_and_refuse() -> None:
    assert str(Rule.parse(" >= 2 / 3 ")) == ">=2/3"
    for bad in ("1/2", ">3/2", ">1/0", "half", ">=1/2/3", ">=0/1", ">0/5", ">1/1"):
        with pytest.raises(Refused):
            Rule.parse(bad)
    assert Rule.parse(">1/2").least(5) == 3 and Rule.parse(">=2/3").least(9) == 6


@given(st.integers(1, 500), st.data())
def test_quorum_is_exactly_the_formula(eligible: int, data: st.DataObject) -> None:
    turnout = data.draw(st.integers(0, eligible))
    approve = data.draw(st.integers(0, turnout))
    result = decide("approve", eligible, turnout, {1: approve}, R, major=False)
    assert result.quorum_met == (2 * turnout > eligible)
    assert (result.outcome == "passed") == (2 * turnout > eligible and 2 * approve > turnout)
    major = decide("approve", eligible, turnout, {1: approve}, R, major=True)
    assert (major.outcome == "passed") == (3 * turnout >= 2 * eligible and 3 * approve >= 2 * turnout)
