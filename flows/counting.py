"""How votes are counted (DESIGN.md, "Who may vote, and how votes are counted"), as pure functions.

A rule is a fraction with its comparison, e.g. `>1/2` (过半数) or `>=2/3` (三分之二以上), and
is checked in integer arithmetic: `part/whole > 1/2` is `2·part > whole`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flows.errors import Refused

_RULE = re.compile(r"^\s*(>=|>)\s*(\d{1,3})\s*/\s*(\d{1,3})\s*$")

DEFAULT_RULES = {"quorum": ">1/2", "pass": ">1/2", "major_quorum": ">=2/3", "major_pass": ">=2/3"}


@dataclass(frozen=True)
class Rule:
    strict: bool
    num: int
    den: int

    @classmethod
    def parse(cls, text: str) -> Rule:
        m = _RULE.match(text)
        if not m:
            raise Refused("{value} is not a rule; write >1/2 or >=2/3.", value=text)
        rule = cls(m.group(1) == ">", int(m.group(2)), int(m.group(3)))
        # a share of nothing is met by nobody voting; more than all can never be met
        if rule.num == 0 or rule.den == 0 or rule.num > rule.den or (rule.strict and rule.num == rule.den):
            raise Refused(
                "{value} cannot work as a rule: use a share above 0 that can be met, like >1/2 or >=2/3.",
                value=text,
            )
        return rule

    def met(self, part: int, whole: int) -> bool:
        left, right = part * self.den, self.num * whole
        return left > right if self.strict else left >= right

    def least(self, whole: int) -> int:
        """The smallest part that meets the rule."""
        return (
            next(p for p in range(whole + 1) if self.met(p, whole)) if self.met(whole, whole) else whole + 1
        )

    def __str__(self) -> str:
        return f"{'>' if self.strict else '>='}{self.num}/{self.den}"


@dataclass(frozen=True)
class Result:
    outcome: str  # passed | rejected | no_quorum
    quorum_met: bool
    adopted: tuple[int, ...]  # option numbers adopted (approve: 1 when passed)


def applicable(rules: dict[str, str], major: bool) -> tuple[str, str]:
    """The quorum and pass rules a poll is counted by: a major matter's own where it is one."""
    return rules["major_quorum" if major else "quorum"], rules["major_pass" if major else "pass"]


def decide(
    kind: str,
    eligible: int,
    turnout: int,
    votes: dict[int, int],
    rules: dict[str, str],
    major: bool,
    k: int = 1,
) -> Result:
    """The outcome of a poll from E, T and each option's votes (approve: 1 同意, 2 反对, 3 弃权)."""
    quorum, passing = (Rule.parse(r) for r in applicable(rules, major))
    if not quorum.met(turnout, eligible):
        return Result("no_quorum", False, ())
    if kind == "approve":
        ok = passing.met(votes.get(1, 0), turnout)
        return Result("passed" if ok else "rejected", True, (1,) if ok else ())
    ranked = sorted(votes.items(), key=lambda nv: (-nv[1], nv[0]))
    if kind == "single":
        (first, v), rest = ranked[0], ranked[1:]
        ahead = all(v > other for _, other in rest)
        ok = ahead and passing.met(v, turnout)
        return Result("passed" if ok else "rejected", True, (first,) if ok else ())
    adopted = tuple(n for n, v in ranked if passing.met(v, turnout))[:k]
    return Result("passed" if adopted else "rejected", True, adopted)
