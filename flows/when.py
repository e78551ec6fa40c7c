"""Times people type: durations (`30m`, `12h`, `3d`, `2w`) and local dates (`2026-12-01 18:00`).

The database keeps UTC; what people type is in their community's time zone. A date
alone (`2026-12-01`) means the end of that local day.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flows.errors import Refused

_DURATION = re.compile(r"^\s*(\d{1,4})\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DATE = re.compile(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2}))?\s*$")


def parse_duration(text: str) -> timedelta | None:
    """`30m`, `12h`, `3d`, `2w` as a timedelta; None for anything else."""
    m = _DURATION.match(text)
    if not m:
        return None
    return timedelta(**{_UNITS[m.group(2).lower()]: int(m.group(1))})


def parse_moment(text: str, now: datetime, tz: str) -> datetime:
    """A duration from now, or a local date (its end) or date and time, as an aware UTC datetime."""
    delta = parse_duration(text)
    if delta is not None:
        return now + delta
    m = _DATE.match(text)
    if not m:
        raise Refused(
            "{value} is not a time: write 3d, 48h, 2026-12-01 or 2026-12-01 18:00.", value=text.strip()
        )
    year, month, day, hour, minute = (int(g) if g else None for g in m.groups())
    try:
        if hour is None:
            moment = datetime.combine(
                datetime(year, month, day).date() + timedelta(days=1), time(), ZoneInfo(tz)
            )  # type: ignore[arg-type]
        else:
            moment = datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz))  # type: ignore[arg-type]
    except ValueError:
        raise Refused("{value} is not a date on the calendar.", value=text.strip()) from None
    return moment.astimezone(now.tzinfo)


def local(at: datetime, tz: str) -> str:
    """A moment in the community's time; midnight as the end of the day before (`2026-12-10 24:00`),
    the way a due date typed as `2026-12-10` is meant."""
    moment = at.astimezone(ZoneInfo(tz))
    if (moment.hour, moment.minute) == (0, 0):
        return f"{(moment - timedelta(days=1)):%Y-%m-%d} 24:00"
    return moment.strftime("%Y-%m-%d %H:%M")
