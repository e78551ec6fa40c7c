"""The lifecycle table is DESIGN.md's, and its diagram says the same."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flows import lifecycle
from storage.models import Issue


def test_statuses_are_exactly_the_designed_strings() -> None:
    assert set(lifecycle.STATUSES) == set(lifecycle.ALLOWED)
    assert len(lifecycle.STATUSES) == 14


def test_the_diagram_beside_the_table_draws_the_same_transitions() -> None:
    text = (Path(lifecycle.__file__).with_suffix(".mmd")).read_text(encoding="utf-8")
    drawn = set(re.findall(r"^\s*(\w+) --> (\w+)", text, re.MULTILINE))
    table = {(a, b) for a, targets in lifecycle.ALLOWED.items() for b in targets}
    assert drawn == table


@pytest.mark.parametrize(
    ("start", "end"), [("raised", "voting"), ("voting", "withdrawn"), ("closed", "reopened")]
)
def test_moves_outside_the_table_are_bugs(start: str, end: str) -> None:
    issue = Issue(id=1, status=start)
    with pytest.raises(lifecycle.IllegalTransition):
        lifecycle.move(None, issue, end, at=None, actor_id=None)  # type: ignore[arg-type]
