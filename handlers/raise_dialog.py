"""The raise dialog (提议): title → details → scope → confirm. Diagram: raise_dialog.mmd.

The confirm step offers up to three similar open issues in the chosen scope or above as
options to support instead of publishing a duplicate.
"""

from __future__ import annotations

from flows import issues as flow
from flows.errors import Refused
from flows.messages import Option, Reply
from handlers import format as fmt
from handlers.context import Ctx
from handlers.dialog import NO, YES, Dialog, Step, choose, pick
from storage.models import Issue, Scope


def _title_prompt(ctx: Ctx, data: dict) -> Reply:
    return Reply(ctx.t("Please enter the title of the issue:"))


def _title(ctx: Ctx, data: dict, text: str) -> tuple[str | None, list[Reply]]:
    data["title"] = flow.clean_title(text)
    return "details", []


def _details_prompt(ctx: Ctx, data: dict) -> Reply:
    return Reply(ctx.t("Please describe the situation:"))


def _details(ctx: Ctx, data: dict, text: str) -> tuple[str | None, list[Reply]]:
    """The situation in words; a photo sent here (its caption the words) is kept with the issue."""
    photo = ctx.incoming.photo
    if photo is not None:
        data["photo"] = flow.keep_photo(photo)
        if not text.strip():  # the photo alone: the words are still to come
            return "details", [Reply(ctx.t("The photo is kept with the issue."))]
    data["details"] = flow.clean_text(text)
    return "scope", []


def _scope_options(ctx: Ctx) -> list[Option]:
    return [
        Option(fmt.scope_choice(ctx.t, s), f"scope:{s.id}")
        for s in flow.scope_choices(ctx.session, ctx.registered)
    ]


def _scope_prompt(ctx: Ctx, data: dict) -> Reply:
    return Reply(ctx.t("Choose the scope:"), tuple(_scope_options(ctx)))


def _scope(ctx: Ctx, data: dict, text: str) -> tuple[str | None, list[Reply]]:
    chosen = choose(text, _scope_options(ctx))
    scope = ctx.session.get(Scope, int(chosen.payload.split(":")[1]))
    assert scope is not None
    data["scope_id"] = scope.id
    # kept with their titles: the confirm prompt and its answer need no query for them
    found = flow.similar_open(ctx.session, scope, data["title"], data["details"], ctx.registered)
    data["similar"] = [[i.id, i.title] for i in found]
    return "confirm", []


def _confirm_options(ctx: Ctx, data: dict) -> list[Option]:
    options = [Option(ctx.t("Publish"), "publish")]
    for issue_id, title in data.get("similar", []):
        options.append(
            Option(ctx.t("Support #{id} {title}", id=issue_id, title=title), f"support:{issue_id}")
        )
    return options


def _confirm_prompt(ctx: Ctx, data: dict) -> Reply:
    scope = ctx.session.get(Scope, data["scope_id"])
    text = (
        ctx.t("Publish this issue?")
        + "\n"
        + ctx.t("{title} ({scope})", title=data["title"], scope=scope.path if scope else "")
    )
    if data.get("similar"):
        text += "\n" + ctx.t("Similar open issues already exist; you can support one of them instead.")
    return Reply(text, tuple(_confirm_options(ctx, data)))


def _confirm(ctx: Ctx, data: dict, text: str) -> tuple[str | None, list[Reply]]:
    answer = text.strip().lower()
    if answer in NO:
        return None, [Reply(ctx.t("Cancelled; nothing was published."))]
    options = _confirm_options(ctx, data)
    chosen = options[0] if answer in YES else pick(text, options)
    if chosen is None:
        raise Refused("Please answer with one of the numbers 1–{n}, or no to cancel.", n=len(options))
    if chosen.payload.startswith("support:"):
        issue, tally, opened = flow.support(
            ctx.session, ctx.resident, int(chosen.payload.split(":")[1]), ctx.now
        )
        return None, [support_reply(ctx, issue, tally, opened)]
    person = ctx.registered
    issue, tally = flow.raise_issue(
        ctx.session, person, data["scope_id"], data["title"], data["details"], ctx.now, data.get("photo")
    )
    if issue.status == "discussing":
        return None, [Reply(ctx.t("Published issue #{id}; it is open for discussion.", id=issue.id))]
    return None, [
        Reply(
            ctx.t(
                "Published issue #{id}; {n} more households must support it before discussion.",
                id=issue.id,
                n=tally.needed,
            )
        )
    ]


def support_reply(ctx: Ctx, issue: Issue, tally: flow.Tally, opened: bool) -> Reply:
    if opened:
        return Reply(
            ctx.t(
                "You support issue #{id}. It has reached its threshold and is now open for discussion.",
                id=issue.id,
            )
        )
    if issue.status == "raised":
        return Reply(
            ctx.t(
                "You support issue #{id}; {n} more households are needed for discussion.",
                id=issue.id,
                n=tally.needed,
            )
        )
    return Reply(
        ctx.t("You support issue #{id} ({households} households).", id=issue.id, households=tally.households)
    )


RAISE = Dialog(
    name="raise",
    first="title",
    steps={
        "title": Step(_title_prompt, _title),
        "details": Step(_details_prompt, _details, photo=True),
        "scope": Step(_scope_prompt, _scope),
        "confirm": Step(_confirm_prompt, _confirm),
    },
)
