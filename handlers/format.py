"""How issues look in a chat: status names, scopes, the one-line and the full view."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.i18n import N_, Translator
from flows import issues as flow
from flows import people
from flows.errors import Refused
from storage.models import Issue, Scope

STATUS_NAMES = {
    "raised": N_("raised, gathering support"),
    "discussing": N_("in discussion"),
    "voting": N_("voting"),
    "passed": N_("passed"),
    "rejected": N_("rejected"),
    "no_quorum": N_("no quorum"),
    "acting": N_("being acted on"),
    "done": N_("done, awaiting ratings"),
    "closed": N_("closed"),
    "reopened": N_("reopened"),
    "expired": N_("expired"),
    "withdrawn": N_("withdrawn"),
    "merged": N_("merged"),
    "referred": N_("referred"),
}

SCOPE_CHOICE = {
    "building": N_("This building ({name})"),
    "grid": N_("This grid ({name})"),
    "area": N_("This area ({name})"),
    "community": N_("The whole community ({name})"),
}


def status(t: Translator, code: str) -> str:
    return t(STATUS_NAMES[code])


def refusal(t: Translator, refused: Refused) -> str:
    """A refusal in the reader's language; a `status` parameter is shown by its name."""
    params = dict(refused.params)
    if params.get("status") in STATUS_NAMES:
        params["status"] = status(t, str(params["status"]))
    return t(refused.msgid, **params)


def scope_choice(t: Translator, scope: Scope) -> str:
    return t(SCOPE_CHOICE[scope.level], name=scope.name)


def line(t: Translator, issue: Issue) -> str:
    return t(
        "#{id} {title} ({status}, {scope})",
        id=issue.id,
        title=issue.title,
        status=status(t, issue.status),
        scope=issue.scope.name,
    )


def local(at, tz: str) -> str:  # type: ignore[no-untyped-def]
    return at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def view(session: Session, t: Translator, issue: Issue, tz: str) -> str:
    tally = flow.tally(session, issue)
    parts = [
        t("Issue #{id}: {title}", id=issue.id, title=issue.title),
        t("Status: {status}", status=status(t, issue.status)) + (t(" (major matter)") if issue.major else ""),
        t("Scope: {scope}", scope=issue.scope.path),
        t("Raised by {name} on {date}", name=issue.author.name, date=local(issue.created_at, tz)),
        t(
            "Support: {supports} people from {households} households; threshold {threshold} households",
            supports=tally.supports,
            households=tally.households,
            threshold=tally.threshold,
        ),
    ]
    if issue.status == "raised":
        parts.append(t("Open for support until {date}", date=local(issue.support_deadline, tz)))
    if issue.merged_into_id:
        parts.append(t("Merged into #{n}", n=issue.merged_into_id))
    if issue.referred_to:
        parts.append(t("Referred to {body}", body=issue.referred_to))
    parts += ["", issue.details]
    comments = flow.comments_of(session, issue)
    if comments:
        parts += ["", t("Comments ({n}):", n=len(comments))]
        parts += [f"C{c.id} {people.label(session, c.person)}: {c.text}" for c in comments]
    return "\n".join(parts)
