"""The injectable clock: flows never call `datetime.now()` themselves.

Production uses the system clock; the console and the tests move a clock of their own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta


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
