"""Quiet hours (a community setting, 22:00–07:00 local by default): what the bot says on its own
waits for them to end. The answer to a person's own message is never held back."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from flows import settings


def window(session: Session, community_id: int) -> tuple[time, time] | None:
    """The community's quiet hours as (start, end) local times; None when it has none."""
    value = str(settings.get(session, community_id, "quiet_hours"))
    if value == "off":
        return None
    start, end = (time.fromisoformat(part) for part in value.split("-"))
    return start, end


def end_of(moment: datetime, hours: tuple[time, time], tz: str) -> datetime | None:
    """When the quiet hours `moment` falls in end (UTC), or None when it falls in none."""
    start, end = hours
    local = moment.astimezone(ZoneInfo(tz))
    today = local.time()
    inside = start <= today < end if start < end else today >= start or today < end
    if not inside:
        return None
    day = local.date() if today < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, ZoneInfo(tz)).astimezone(moment.tzinfo)


def start_before(moment: datetime, hours: tuple[time, time], tz: str) -> datetime:
    """When the quiet hours that `moment` falls in began (UTC)."""
    start, _ = hours
    local = moment.astimezone(ZoneInfo(tz))
    day = local.date() if local.time() >= start else local.date() - timedelta(days=1)
    return datetime.combine(day, start, ZoneInfo(tz)).astimezone(moment.tzinfo)


def ends(
    session: Session, communities: Iterable[int], now: datetime, fallback_tz: str = "Asia/Shanghai"
) -> dict[int, datetime]:
    """For each community now in its quiet hours, when they end."""
    found = {}
    for community_id in communities:
        hours = window(session, community_id)
        if hours is None:
            continue
        tz = str(settings.get(session, community_id, "timezone", fallback_tz))
        end = end_of(now, hours, tz)
        if end is not None:
            found[community_id] = end
    return found


def reminder_at(
    session: Session, community_id: int, at: datetime, deadline: datetime, now: datetime, tz: str
) -> datetime | None:
    """When a reminder meant for `at`, pointless from `deadline` on, should go: at `at`, or, when
    that falls in quiet hours which end too late, just before they begin (if that is still to
    come); None: not at all. (Quiet hours ending in time are waited out by the outbox.)"""
    hours = window(session, community_id)
    end = end_of(at, hours, tz) if hours is not None else None
    if hours is None or end is None or end < deadline:
        return at
    earlier = start_before(at, hours, tz) - BEFORE_QUIET
    return earlier if earlier > now else None


BEFORE_QUIET = timedelta(minutes=15)
