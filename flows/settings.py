"""Per-community rules: each with a default, a cast and a range. One table, read by every flow."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from flows import counting
from flows.errors import Refused
from locales import N_
from storage.models import Setting
from storage.prepared import Prepared

NOTICE_MAX = 1000


@dataclass(frozen=True)
class Rule:
    key: str
    default: str
    check: Callable[[str], object]
    help: str


def _int_between(lo: int, hi: int) -> Callable[[str], object]:
    def check(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise Refused("{value} is not a whole number.", value=value) from None
        if not lo <= n <= hi:
            raise Refused("{value} is out of range: use {lo} to {hi}.", value=value, lo=lo, hi=hi)
        return n

    return check


def _on_off(value: str) -> str:
    if value.lower() not in ("on", "off"):
        raise Refused("{value} is neither on nor off.", value=value)
    return value.lower()


def _fraction(value: str) -> str:
    return str(counting.Rule.parse(value))


def _locale(value: str) -> str:
    if value not in ("", "zh_CN", "en"):
        raise Refused("{value} is not a language here; use zh_CN or en.", value=value)
    return value


_HOURS = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")


def _quiet(value: str) -> str:
    value = value.replace(" ", "").replace("–", "-")
    if value != "off" and (not _HOURS.match(value) or value[:5] == value[6:]):
        raise Refused("{value} is not quiet hours; write them like 22:00-07:00, or off.", value=value)
    return value


def _notice(value: str) -> str:
    if len(value) > NOTICE_MAX:
        raise Refused("At most {n} characters, please.", n=NOTICE_MAX)
    return value


_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


def _slug(value: str) -> str:
    """A community's address on the public board; all digits would be taken for another's number."""
    if value and (not _SLUG.match(value) or value.isdigit()):
        raise Refused(
            "{value} cannot be an address: use up to 40 small letters, digits and hyphens, not only digits (e.g. wutong).",
            value=value,
        )
    return value


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    # a region such as "Asia" is a directory of tzdata: IsADirectoryError, an OSError
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise Refused("{value} is not a known time zone (e.g. Asia/Shanghai).", value=value) from None
    return value


RULES: dict[str, Rule] = {
    r.key: r
    for r in (
        Rule("timezone", "", _timezone, N_("time zone for display, digests and typed dates")),
        Rule(
            "support_percent", "10", _int_between(1, 100), N_("households (%) of a scope that must support")
        ),
        Rule("support_minimum", "3", _int_between(1, 50), N_("the fewest supporting households")),
        Rule("support_window_days", "14", _int_between(1, 90), N_("days an issue may gather support")),
        Rule("report_hide_count", "3", _int_between(1, 50), N_("reports that hide a comment for review")),
        Rule("quorum", ">1/2", _fraction, N_("turnout of the eligible for a valid vote (过半)")),
        Rule("pass", ">1/2", _fraction, N_("share of those who voted that passes (过半数)")),
        Rule("major_quorum", ">=2/3", _fraction, N_("turnout for a major matter (三分之二以上)")),
        Rule("major_pass", ">=2/3", _fraction, N_("share that passes a major matter")),
        Rule("vote_max_days", "60", _int_between(1, 365), N_("the longest a vote may stay open")),
        Rule("locale", "", _locale, N_("the community's language: groups, notices (zh_CN or en)")),
        Rule(
            "quiet_hours",
            "22:00-07:00",
            _quiet,
            N_("local hours when the bot says nothing on its own, or off"),
        ),
        Rule(
            "privacy_notice",
            "",
            _notice,
            N_("what Yishi keeps and why, told at /start, /join and /privacy (empty: the standard text)"),
        ),
        Rule(
            "slug",
            "",
            _slug,
            N_("the community's address on the public board, /c/SLUG (empty: its number)"),
        ),
        Rule(
            "public_comments",
            "off",
            _on_off,
            N_(
                "show the texts of comments and of issues on the public board (residents wrote them to neighbours)"
            ),
        ),
        Rule(
            "group_names_rooms",
            "off",
            _on_off,
            N_("name the rooms still to vote in a group reminder (personal data)"),
        ),
    )
}


_STORED = Prepared(select(Setting.key, Setting.value).where(Setting.community_id == bindparam("community")))


def _stored(session: Session, community_id: int) -> dict[str, str]:
    """The community's stored settings, read once per session (every support asks for two)."""
    cache = session.info.setdefault("settings", {})
    if community_id not in cache:
        cache[community_id] = dict(_STORED.rows(session, {"community": community_id}))
    return cache[community_id]


def get(session: Session, community_id: int, key: str, fallback: str = "") -> object:
    rule = RULES[key]
    stored = _stored(session, community_id).get(key)
    value = stored if stored is not None else (rule.default or fallback)
    return rule.check(value)


def get_int(session: Session, community_id: int, key: str) -> int:
    value = get(session, community_id, key)
    assert isinstance(value, int)
    return value


def all_values(session: Session, community_id: int, fallbacks: dict[str, str]) -> dict[str, object]:
    """Every setting as it holds for the community; `fallbacks` for those the deployment decides
    (its time zone, its language)."""
    return {key: get(session, community_id, key, fallbacks.get(key, "")) for key in RULES}


def put(session: Session, community_id: int, key: str, value: str) -> object:
    if key not in RULES:
        raise Refused("Unknown setting {key}. Settings: {keys}.", key=key, keys=", ".join(RULES))
    checked = RULES[key].check(value.strip())
    if key == "slug" and checked:
        taken = session.scalar(
            select(Setting.community_id).where(
                Setting.key == "slug", Setting.value == checked, Setting.community_id != community_id
            )
        )
        if taken is not None:
            raise Refused("Another community has the address {value} already.", value=checked)
    row = session.get(Setting, (community_id, key))
    if row is None:
        session.add(Setting(community_id=community_id, key=key, value=str(checked)))
    else:
        row.value = str(checked)
    _stored(session, community_id)[key] = str(checked)
    return checked
