"""The open-vote dialog (发起表决): kind → options → (k) → duration → secret? → unit → confirm.
Diagram: vote_dialog.mmd.

The confirm step restates everything, the quorum and pass rule included, in words of its
own: a script recognises each step by its question, so the restatement does not repeat them.
"""

from __future__ import annotations

from datetime import datetime

from flows import counting, votes
from flows import issues as issue_flow
from flows.errors import Refused
from flows.messages import Option, Reply
from flows.numbers import whole
from flows.when import local, parse_moment
from handlers import format as fmt
from handlers.context import Ctx
from handlers.dialog import NO, YES, Dialog, Step, choose, pick
from storage.models import Issue


def _issue(ctx: Ctx, data: dict) -> Issue:
    return issue_flow.get_issue(ctx.session, ctx.registered, data["issue"])


def _kind_options(ctx: Ctx) -> list[Option]:
    return [Option(ctx.t(fmt.KIND_NAMES[k]), k) for k in votes.KINDS]


def _kind_prompt(ctx: Ctx, data: dict) -> Reply:
    return Reply(ctx.t("What kind of vote on issue #{id}?", id=data["issue"]), tuple(_kind_options(ctx)))


def _kind(ctx: Ctx, data: dict, text: str) -> tuple[str | None, list[Reply]]:
    chosen = choose(text, _kind_options(ctx))
    data["kind"] = chosen.payload
    if chosen.payload == "approve":
        data["labels"] = list(votes.APPROVE)
        return "duration", []
    return "options", []


def _options_prompt(ctx: Ctx, data: dict) -> Reply:
    return Reply(ctx.t("Write the options in one message, separated by ; (e.g. 东门;西门;南门):"))


def _options(ctx: Ctx, data: dict, text: str) -> tuple[str | None, list[Reply]]:
    data["labels"] = votes.clean_options(data["kind"], text)
    return ("most" if data["kind"] == "multiple" else "duration"), []


def _most_prompt(ctx: Ctx, data: dict) -> Reply:
    return Reply(ctx.t("At most how many options may each voter choose? (1–{n})", n=len(data["labels"])))


def _most(ctx: Ctx, data: dict, text: str) -> tuple[str | None, list[Reply]]:
    most = whole(text, digits=3)
    if most is None or not 1 <= most <= len(data["labels"]):
        raise Refused("Please answer with one of the numbers 1–{n}.", n=len(data["labels"]))
    data["k"] = most
    return "duration", []


def _duration_prompt(ctx: Ctx, data: dict) -> Reply:
    return Reply(
        ctx.t(
            "How long should the vote stay open? A duration like 3d or 48h, or a local end time like 2026-12-01 18:00:"
        )
    )


def _duration(ctx: Ctx, data: dict, text: str) -> tuple[str | None, list[Reply]]:
    issue = _issue(ctx, data)
    closes = parse_moment(text, ctx.now, ctx.timezone(issue.community_id))
    votes.check_closing(ctx.session, issue, closes, ctx.now)
    data["closes"] = closes.isoformat()
    return "secret", []


def _secret_options(ctx: Ctx) -> list[Option]:
    return [
        Option(ctx.t("Open: named, changeable until the close"), "open"),
        Option(ctx.t("Secret: anonymous, final once cast"), "secret"),
    ]


def _secret_prompt(ctx: Ctx, data: dict) -> Reply:
    return Reply(ctx.t("A secret ballot?"), tuple(_secret_options(ctx)))


def _secret(ctx: Ctx, data: dict, text: str) -> tuple[str | None, list[Reply]]:
    chosen = choose(text, _secret_options(ctx))
    data["secret"] = chosen.payload == "secret"
    return "unit", []


def _unit_options(ctx: Ctx) -> list[Option]:
    return [Option(ctx.t(fmt.UNIT_CHOICES[u]), u) for u in votes.UNITS]


def _unit_prompt(ctx: Ctx, data: dict) -> Reply:
    return Reply(ctx.t("Count the votes per household or per person?"), tuple(_unit_options(ctx)))


def _unit(ctx: Ctx, data: dict, text: str) -> tuple[str | None, list[Reply]]:
    chosen = choose(text, _unit_options(ctx))
    data["unit"] = chosen.payload
    issue = _issue(ctx, data)
    data["eligible"] = len(votes.eligible_units(ctx.session, issue.scope, data["unit"]))
    if not data["eligible"]:
        raise Refused(
            "Nobody in {scope} may vote: a vote cannot open without eligible voters.", scope=issue.scope.path
        )
    return "confirm", []


def _confirm_options(ctx: Ctx) -> list[Option]:
    return [Option(ctx.t("Confirm and open"), "confirm"), Option(ctx.t("Cancel"), "cancel")]


def _confirm_prompt(ctx: Ctx, data: dict) -> Reply:
    issue = _issue(ctx, data)
    tz = ctx.timezone(issue.community_id)
    rules = votes.rules_of(ctx.session, issue.community_id)
    major = issue.major
    quorum, passing = counting.applicable(rules, major)
    e = data["eligible"]
    ballots, counted = fmt.BALLOT_NAMES[data["secret"]], fmt.UNIT_NAMES[data["unit"]]
    lines = [
        ctx.t("Confirm: open the vote on issue #{id} {title}?", id=issue.id, title=issue.title),
        ctx.t(
            "Question: {choices}",
            choices=" / ".join(
                fmt.option_label(ctx.t, data["kind"], n, label) for n, label in enumerate(data["labels"], 1)
            ),
        ),
        ctx.t("Closes at {time}", time=local(datetime.fromisoformat(data["closes"]), tz)),
        ctx.t(ballots),
        ctx.t(counted, n=e),
        fmt.rules_text(ctx.t, data["kind"], quorum, passing, e, data.get("k", 1), major),
    ]
    return Reply("\n".join(lines), tuple(_confirm_options(ctx)))


def _confirm(ctx: Ctx, data: dict, text: str) -> tuple[str | None, list[Reply]]:
    answer = text.strip().lower()
    chosen = _confirm_options(ctx)[0] if answer in YES else pick(text, _confirm_options(ctx))
    if answer in NO or (chosen is not None and chosen.payload == "cancel"):
        return None, [Reply(ctx.t("Cancelled; no vote was opened."))]
    if chosen is None:
        raise Refused("Please answer with one of the numbers 1–{n}, or no to cancel.", n=2)
    issue = _issue(ctx, data)
    tz = ctx.timezone(issue.community_id)
    poll = votes.open_poll(
        ctx.session, ctx.registered, issue, kind=data["kind"], labels=data["labels"], k=data.get("k", 1),
        closes_at=datetime.fromisoformat(data["closes"]), secret=data["secret"], unit=data["unit"], now=ctx.now, tz=tz, key=ctx.key,
    )  # fmt: skip
    return None, [
        Reply(
            ctx.t(
                "The vote on issue #{id} is open until {time}: {n} may vote. /issue {id} shows the choices.",
                id=issue.id,
                time=local(poll.closes_at, tz),
                n=poll.eligible,
            )
        )
    ]


OPEN_VOTE = Dialog(
    name="openvote",
    first="kind",
    steps={
        "kind": Step(_kind_prompt, _kind),
        "options": Step(_options_prompt, _options),
        "most": Step(_most_prompt, _most),
        "duration": Step(_duration_prompt, _duration),
        "secret": Step(_secret_prompt, _secret),
        "unit": Step(_unit_prompt, _unit),
        "confirm": Step(_confirm_prompt, _confirm),
    },
)
