"""Commands on issues: list, view, support, comment, report, review, and the moves on an issue."""

from __future__ import annotations

from flows import issues as flow
from flows import lifecycle
from flows.errors import Refused
from flows.messages import Reply
from flows.numbers import whole
from handlers import dialog
from handlers import format as fmt
from handlers.context import Ctx, one_arg
from handlers.raise_dialog import RAISE, support_reply

REVIEW_WORDS = {"keep": "keep", "保留": "keep", "remove": "remove", "删除": "remove", "移除": "remove"}


def _split(args: str, usage: str, parts: int) -> list[str]:
    """The first parts-1 words, then the rest of the text as the last part."""
    pieces = args.strip().split(maxsplit=parts - 1)
    if len(pieces) != parts:
        raise Refused("Usage: {usage}", usage=usage)
    return pieces


def _comment_id(text: str) -> int:
    number = whole(text.strip().upper().lstrip("C#"))
    if number is None:
        raise Refused("{value} is not a comment number (like C12).", value=text.strip())
    return number


def raise_(ctx: Ctx, args: str) -> list[Reply]:
    flow.scope_choices(ctx.session, ctx.registered)  # refuses early: only residents raise
    return dialog.start(ctx, RAISE)


def list_issues(ctx: Ctx, args: str) -> list[Reply]:
    found = flow.visible_to(ctx.session, ctx.registered, lifecycle.OPEN)
    if not found:
        return [Reply(ctx.t("There are no open issues in your scopes. /raise starts one."))]
    return [Reply("\n".join([ctx.t("Open issues in your scopes:"), *(fmt.line(ctx.t, i) for i in found)]))]


def show(ctx: Ctx, args: str) -> list[Reply]:
    person = ctx.registered
    issue = flow.get_issue(ctx.session, person, flow.parse_id(one_arg(args, "/issue N")))
    view = fmt.view(ctx.session, ctx.t, issue, ctx.timezone(issue.community_id))
    return [Reply(view, photo=flow.photo_of(ctx.session, issue.id))]


def support(ctx: Ctx, args: str) -> list[Reply]:
    issue_id = flow.parse_id(one_arg(args, "/support N"))
    issue, tally, opened = flow.support(ctx.session, ctx.resident, issue_id, ctx.now)
    return [support_reply(ctx, issue, tally, opened)]


def comment(ctx: Ctx, args: str) -> list[Reply]:
    number, text = _split(args, "/comment N TEXT", 2)
    row = flow.comment(ctx.session, ctx.resident, flow.parse_id(number), text, ctx.now)
    return [Reply(ctx.t("Comment C{c} added to issue #{id}.", c=row.id, id=row.issue_id))]


def report(ctx: Ctx, args: str) -> list[Reply]:
    comment_id = _comment_id(one_arg(args, "/report C"))
    if flow.report(ctx.session, ctx.registered, comment_id, ctx.now):
        return [
            Reply(
                ctx.t("Thank you. Comment C{c} is now hidden until the committee reviews it.", c=comment_id)
            )
        ]
    return [Reply(ctx.t("Thank you. Your report on comment C{c} was recorded.", c=comment_id))]


def review(ctx: Ctx, args: str) -> list[Reply]:
    number, word = _split(args, "/review C keep|remove", 2)
    decision = REVIEW_WORDS.get(word.strip().lower(), word.strip().lower())
    row = flow.review(ctx.session, ctx.registered, _comment_id(number), decision, ctx.now)
    if row.state == "kept":
        return [Reply(ctx.t("Comment C{c} is visible again.", c=row.id))]
    return [Reply(ctx.t("Comment C{c} was removed.", c=row.id))]


def withdraw(ctx: Ctx, args: str) -> list[Reply]:
    issue = flow.withdraw(ctx.session, ctx.registered, flow.parse_id(one_arg(args, "/withdraw N")), ctx.now)
    return [Reply(ctx.t("Issue #{id} was withdrawn.", id=issue.id))]


def escalate(ctx: Ctx, args: str) -> list[Reply]:
    issue, tally = flow.escalate(
        ctx.session, ctx.registered, flow.parse_id(one_arg(args, "/escalate N")), ctx.now
    )
    return [
        Reply(
            ctx.t(
                "Issue #{id} now belongs to {scope}; its threshold there is {threshold} households ({households} support it).",
                id=issue.id,
                scope=issue.scope.path,
                threshold=tally.threshold,
                households=tally.households,
            )
        )
    ]


def refer(ctx: Ctx, args: str) -> list[Reply]:
    number, body = _split(args, "/refer N BODY", 2)
    issue = flow.refer(ctx.session, ctx.registered, flow.parse_id(number), body, ctx.now)
    return [Reply(ctx.t("Issue #{id} was referred to {body}.", id=issue.id, body=issue.referred_to))]


def merge(ctx: Ctx, args: str) -> list[Reply]:
    pieces = args.split()
    if len(pieces) != 2:
        raise Refused("Usage: {usage}", usage="/merge N M")
    issue, target, moved = flow.merge(
        ctx.session, ctx.registered, flow.parse_id(pieces[0]), flow.parse_id(pieces[1]), ctx.now
    )
    return [
        Reply(
            ctx.t(
                "Issue #{id} was merged into #{into}; {n} supporters moved with it.",
                id=issue.id,
                into=target.id,
                n=moved,
            )
        )
    ]
