"""The public board's pages: the communities, a community's board, an issue, its notice (公示) for
print, the public record as JSON and CSV, and the audit chain with a box to look up a hash.

Every page is read in a reading transaction (`Database.reading`: on SQLite it never takes the
write lock, so the board never holds up the bot), rendered on the server with Jinja2 (escaped),
in the visitor's language (`?lang=`, else their browser's `Accept-Language`, else the
community's), and may be cached for a little while. What a page shows is what `flows.board`
gives: nothing that names a resident.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from bot.app import App
from bot.board import charts
from flows import audit, board, export, settings
from flows.when import local
from handlers.format import rule_words
from locales import DEFAULT_LOCALE, LANGUAGES, Translator
from storage.models import Scope

T = TypeVar("T")
TEMPLATES = Path(__file__).resolve().parent / "templates"
CACHE = "public, max-age=30"  # a page may be a little behind; the bot's messages are not
PHOTO_CACHE = "public, max-age=3600"
HASH = re.compile(r"^[0-9a-f]{64}$")
LANGUAGE_NAMES = {"zh_CN": "中文", "en": "English"}

environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.globals.update(
    bar=charts.bar,
    results=charts.results,
    STAGES=board.STAGES,
    STAGE_NAMES=board.STAGE_NAMES,
    issue_path=board.issue_path,
    STATUS_LABELS=board.STATUS_LABELS,
    OUTCOME_LABELS=board.OUTCOME_LABELS,
)


def chosen_locale(request: Request, fallback: str) -> tuple[str, bool]:
    """The visitor's language, and whether they chose it here (`?lang=`: then links keep it)."""
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        return asked, True
    wanted = []
    for n, part in enumerate(request.headers.get("accept-language", "").split(",")):
        tag, *params = (p.strip() for p in part.split(";"))
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if 0 < weight <= 1:  # q=0: not wanted; a weight that is no number in (0, 1]: ignored
            wanted.append((-weight, n, tag.lower()))
    for _, _, tag in sorted(wanted):
        if tag.startswith("zh"):
            return "zh_CN", False
        if tag.startswith("en"):
            return "en", False
    return (fallback if fallback in LANGUAGES else DEFAULT_LOCALE), False


class View:
    """What every template gets: the translator, times in the community's zone, links that keep
    the chosen language."""

    def __init__(self, request: Request, locale: str, kept: bool, tz: str) -> None:
        self.request, self.locale, self.kept, self.tz = request, locale, kept, tz
        self.t = Translator(locale)

    def url(self, path: str, **query: object) -> str:
        params = {k: v for k, v in query.items() if v not in (None, "")}
        if self.kept:
            params["lang"] = self.locale
        return path + ("?" + urlencode(params) if params else "")

    def switch(self, locale: str) -> str:
        """This page in another language."""
        params = dict(self.request.query_params) | {"lang": locale}
        return self.request.url.path + "?" + urlencode(params)

    def when(self, at: datetime | None) -> str:
        return local(at, self.tz) if at is not None else ""

    def day(self, at: datetime | None) -> str:
        return local(at, self.tz)[:10] if at is not None else ""

    def status(self, card: board.Card) -> str:
        return self.label(card.status, card)

    def label(self, status: str, card: board.Card) -> str:
        """A status as the board names it (a merged issue names the one it went into)."""
        return self.t(board.STATUS_LABELS[status], n=card.merged_into or "", body=card.referred_to or "")

    def rule(self, text: str) -> str:
        """A counting rule (">1/2", ">=2/3") in words."""
        return rule_words(self.t, text)

    def percent(self, share: float) -> str:
        return f"{round(share * 100)}%"


def routes(core: App) -> list[Route]:
    config = core.config

    def place(session: Session, community: Scope | None) -> tuple[str, str]:
        """The community's language and time zone."""
        if community is None:
            return config.locale, config.timezone
        return (
            str(settings.get(session, community.id, "locale", config.locale)),
            str(settings.get(session, community.id, "timezone", config.timezone)),
        )

    def page(
        request: Request, template: str, community: Scope | None, where: tuple[str, str], **context: object
    ) -> Response:
        fallback, tz = where
        locale, kept = chosen_locale(request, fallback)
        view = View(request, locale, kept, tz)
        html = environment.get_template(template).render(
            view=view, t=view.t, languages=LANGUAGE_NAMES, community=community, **context
        )
        headers = {
            "Cache-Control": CACHE,
            "Vary": "Accept-Language",
            "Content-Language": locale.replace("_", "-"),
        }
        return HTMLResponse(html, headers=headers)

    def community_of(session: Session, request: Request) -> tuple[Scope, str, tuple[str, str]]:
        """The community of the address, its slug, its language and time zone; else a 404."""
        community = board.find(session, request.path_params["slug"])
        if community is None:
            raise HTTPException(404)
        session.expunge(community)
        return community, board.slug(session, community.id), place(session, community)

    def index(request: Request) -> Response:
        with core.db.reading() as session:
            found = board.communities(session)
        return page(request, "index.html", None, (config.locale, config.timezone), communities=found)

    def community_board(request: Request) -> Response:
        stage = request.query_params.get("stage") or None
        if stage not in (None, *board.STAGES):
            stage = None
        try:
            number = int(request.query_params.get("page", "1"))
        except ValueError:
            number = 1
        scope_param = request.query_params.get("scope", "")
        with core.db.reading() as session:
            community, slug, where = community_of(session, request)
            scopes = board.scopes_of(session, community)
            scope = next((s for s in scopes if str(s.id) == scope_param), None)
            found = board.page(session, community, stage, scope, number)
            places = [(s.id, s.level, s.name) for s in scopes]
            chosen = scope.id if scope else None
        return page(
            request, "board.html", community, where, slug=slug, found=found, stage=stage,
            scope=chosen, places=places,
        )  # fmt: skip

    def of_issue(
        request: Request, fetch: Callable[[Session, Scope, int], T]
    ) -> tuple[Scope, str, tuple[str, str], T]:
        """What `fetch` reads of the issue in the address (its community, slug, language and time
        zone with it); a 404 where there is no such issue, or nothing of it to show."""
        with core.db.reading() as session:
            community, slug, where = community_of(session, request)
            found = fetch(session, community, _issue_id(request))
            if found is None:
                raise HTTPException(404)
            return community, slug, where, found

    def one_issue(request: Request) -> Response:
        community, slug, where, found = of_issue(request, board.issue)
        return page(request, "issue.html", community, where, slug=slug, full=found, card=found.card)

    def issue_photo(request: Request) -> Response:
        _, _, _, (data, mime) = of_issue(request, board.photo)
        headers = {"Cache-Control": PHOTO_CACHE, "X-Content-Type-Options": "nosniff"}
        return Response(data, media_type=mime, headers=headers)

    def issue_notice(request: Request) -> Response:
        community, slug, where, found = of_issue(request, board.notice)
        link = _absolute(request, config.public_url, board.issue_path(slug, found.full.card.id))
        qr = charts.qr(link)
        shown = page(
            request, "notice.html", community, where, slug=slug, notice=found, card=found.full.card, poll=found.poll,
            link=link, qr=qr,
        )  # fmt: skip
        if not config.public_url:  # its link is the address it was asked at: no shared cache keeps it
            shown.headers["Cache-Control"] = "private, max-age=30"
        return shown

    def record(request: Request) -> Response:
        fmt = request.path_params["format"]
        if fmt not in ("json", "csv"):
            raise HTTPException(404)
        with core.db.reading() as session:
            community, _, _ = community_of(session, request)
            data = export.record(session, community.name, core.clock.now())
        headers = {"Cache-Control": CACHE}
        if fmt == "json":
            return JSONResponse(data, headers=headers)
        return Response(export.to_csv(data), media_type="text/csv; charset=utf-8", headers=headers)

    def audit_page(request: Request) -> Response:
        held = audit.normal_hash(request.query_params.get("hash", ""))
        with core.db.reading() as session:
            community, slug, where = community_of(session, request)
            head = audit.head(session, community.id)
            check = audit.last_check(session, community.id)
            if check is not None:
                session.expunge(check)
            found = audit.find(session, community.id, held) if HASH.match(held) else None
        return page(
            request, "audit.html", community, where, slug=slug, head=head, check=check, held=held,
            well_formed=bool(HASH.match(held)), found=found,
        )  # fmt: skip

    return [
        Route("/", index),
        Route("/c/{slug}", community_board),
        Route("/c/{slug}/issues/{id:int}", one_issue),
        Route("/c/{slug}/issues/{id:int}/photo", issue_photo),
        Route("/c/{slug}/issues/{id:int}/notice", issue_notice),
        Route("/c/{slug}/record.{format}", record),
        Route("/c/{slug}/audit", audit_page),
    ]


def _issue_id(request: Request) -> int:
    """The issue's number in the address; one no issue can have is a 404, not a database error."""
    number = int(request.path_params["id"])
    if number > 2**31 - 1:
        raise HTTPException(404)
    return number


def not_found(core: App) -> Callable[[Request, Exception], Response]:
    """A 404 page in the visitor's language (the bot's own routes included)."""

    def handler(request: Request, exc: Exception) -> Response:
        locale, kept = chosen_locale(request, core.config.locale)
        view = View(request, locale, kept, core.config.timezone)
        html = environment.get_template("404.html").render(
            view=view, t=view.t, languages=LANGUAGE_NAMES, community=None
        )
        return HTMLResponse(html, status_code=404, headers={"Vary": "Accept-Language"})

    return handler


def _absolute(request: Request, public_url: str, path: str) -> str:
    """The page's address as a resident reaches it: under YISHI_PUBLIC_URL, else as asked here."""
    if public_url:
        return public_url + path
    return str(request.base_url).rstrip("/") + path
