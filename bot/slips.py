"""Invitation slips to print (`yishi invites --format html`): a file for the operator, never a page
of the public site. One slip a person whose code is unused, several to an A4 page with lines to
cut along: their name, building and room, the code, a QR code of the Telegram deep link where the
bot is configured, and for WeChat the Official Account's name with the words to send. In the
community's language, in the few plain lines an elderly resident needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup

from bot.board import charts
from bot.board.site import environment
from locales import Translator


@dataclass(frozen=True)
class Slip:
    name: str
    building: str
    room: str
    code: str
    link: str | None  # the Telegram deep link, where the bot is configured
    qr: Markup | None


def slips(rows: list[tuple[str, str, str, str]], link_for: Callable[[str], str] | None) -> list[Slip]:
    """`rows`: (name, building, room, code) as `flows.invites.open_codes` gives them; `link_for`: a
    code's Telegram deep link, where the bot is configured."""
    made = []
    for name, building, room, code in rows:
        link = link_for(code) if link_for else None
        qr = charts.qr(link) if link else None
        made.append(Slip(name, building, room, code, link, qr))
    return made


def page(community: str, made: list[Slip], account: str, locale: str) -> str:
    """The printable page; `account`: the Official Account's name (empty: WeChat is not offered)."""
    t = Translator(locale)
    return environment.get_template("slips.html").render(
        t=t, lang=t.locale.replace("_", "-"), community=community, slips=made, account=account
    )
