"""The injectable clock: flows never call `datetime.now()` themselves.

Production uses the system clock; the console and the tests move a clock of their own.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^\s*(\d{1,4})\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta | None:
    """`30m`, `12h`, `3d`, `2w` as a timedelta; None for anything else."""
    m = _DURATION.match(text)
    if not m:
        return None
    return timedelta(**{_UNITS[m.group(2).lower()]: int(m.group(1))})


class Clock:
    """The system clock, in UTC, aware."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class MovableClock(Clock, ABC):
    """A clock that `/clock` and the tests may move forward."""

    @abstractmethod
    def advance(self, delta: timedelta) -> None: ...


class OffsetClock(MovableClock):
    """The system clock moved forward by an offset that only grows (the console's `/clock`)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def advance(self, delta: timedelta) -> None:
        self.offset += delta

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


class FixedClock(MovableClock):
    """A clock that stands still until moved (tests)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def advance(self, delta: timedelta) -> None:
        self.at += delta

    def now(self) -> datetime:
        return self.at
