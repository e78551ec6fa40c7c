"""Commands to decide and act: votes, action items and ratings."""

from __future__ import annotations

from flows import actions, votes
from flows import issues as flow
from flows.errors import Refused
from flows.messages import Reply
from flows.numbers import whole
from flows.when import local
from handlers import ballot, dialog
from handlers import format as fmt
from handlers.context import Ctx, one_arg
from handlers.vote_dialog import OPEN_VOTE
from storage.models import Poll


def _words(args: str, usage: str, least: int) -> list[str]:
    words = args.split()
    if len(words) < least:
        raise Refused("Usage: {usage}", usage=usage)
    return words


def _item_id(text: str) -> int:
    number = whole(text.strip().lstrip("#＃"))
    if number is None:
        raise Refused("{value} is not an action item number.", value=text.strip())
    return number


def openvote(ctx: Ctx, args: str) -> list[Reply]:
    issue = flow.get_issue(ctx.session, ctx.registered, flow.parse_id(one_arg(args, "/openvote N")))
    votes.check_opener(ctx.session, ctx.registered, issue)
    return dialog.start(ctx, OPEN_VOTE, {"issue": issue.id})


def vote(ctx: Ctx, args: str) -> list[Reply]:
    number, *words = _words(args, "/vote N CHOICE…", 1)
    issue_id = flow.parse_id(number)
    if ctx.incoming.is_group or not words:
        live = votes.live_poll(ctx.session, ctx.voter, issue_id, ctx.now)
        if live.secret and ctx.incoming.is_group:  # never taken here: the choice would be read by all
            return [
                Reply(
                    ctx.t("A secret ballot is cast in your private chat with me, never in a group."),
                    start=ballot.start_of(live.id),
                    retract=True,
                )
            ]
        if not words:  # the ballot, with a button per choice
            if ctx.incoming.is_group:
                raise Refused("Usage: {usage}", usage="/vote N CHOICE…")
            poll = ctx.session.get(Poll, live.id)
            assert poll is not None
            return [ballot.private_ballot(ctx, poll)]
    poll, chosen, changed = votes.vote(ctx.session, ctx.voter, issue_id, words, ctx.now, ctx.key)
    labels = ", ".join(
        fmt.option_label(ctx.t, poll.kind, votes.APPROVE.index(c) + 1, c) if poll.kind == "approve" else c
        for c in chosen
    )
    if changed:
        text = ctx.t("Your ballot on issue #{id} is changed: {choices}.", id=poll.issue_id, choices=labels)
    elif poll.secret:
        text = ctx.t(
            "Your secret ballot on issue #{id} is cast: {choices}. It cannot be changed.",
            id=poll.issue_id,
            choices=labels,
        )
    else:
        text = ctx.t(
            "Your ballot on issue #{id} is recorded: {choices}. You may change it until the close.",
            id=poll.issue_id,
            choices=labels,
        )
    # typed in a group: the confirmation goes to the voter, not to everyone there
    return [Reply(text, private=ctx.incoming.is_group, secret=poll.secret and not changed)]


def proxyvote(ctx: Ctx, args: str) -> list[Reply]:
    number, name, *choices = _words(args, "/proxyvote N NAME CHOICE…", 3)
    voter, poll = votes.proxy_vote(
        ctx.session, ctx.registered, flow.parse_id(number), name, choices, ctx.now, ctx.key
    )
    return [
        Reply(
            ctx.t(
                "Ballot entered for {name} on issue #{id}; the record shows you entered it.",
                name=voter.name,
                id=poll.issue_id,
            )
        )
    ]


def closevote(ctx: Ctx, args: str) -> list[Reply]:
    issue_id = flow.parse_id(one_arg(args, "/closevote N"))
    poll = votes.close_early(ctx.session, ctx.registered, issue_id, ctx.now, ctx.key)
    issue = flow.get_issue(ctx.session, ctx.registered, issue_id)
    lines = [
        ctx.t("The vote on issue #{id} is closed.", id=issue_id),
        *fmt.poll_lines(ctx.session, ctx.t, issue, poll, _tz(ctx)),
    ]
    return [Reply("\n".join(lines))]


def major(ctx: Ctx, args: str) -> list[Reply]:
    issue = votes.flag_major(ctx.session, ctx.registered, flow.parse_id(one_arg(args, "/major N")), ctx.now)
    return [
        Reply(
            ctx.t(
                "Issue #{id} is flagged as a major matter: its vote will follow the stricter rules for major matters.",
                id=issue.id,
            )
        )
    ]


def task(ctx: Ctx, args: str) -> list[Reply]:
    pieces = args.split(maxsplit=3)
    if len(pieces) != 4:
        raise Refused("Usage: {usage}", usage="/task N OWNER DUE TITLE")
    number, owner, due, title = pieces
    item = actions.add(
        ctx.session, ctx.registered, flow.parse_id(number), owner, due, title, ctx.now, _tz(ctx)
    )
    return [
        Reply(
            ctx.t(
                "#{item} assigned to {owner} for issue #{id}, due {due}.",
                item=item.id,
                owner=item.owner.name,
                id=item.issue_id,
                due=local(item.due_at, _tz(ctx)),
            )
        )
    ]


def progress(ctx: Ctx, args: str) -> list[Reply]:
    pieces = args.split(maxsplit=2)
    if len(pieces) != 3:
        raise Refused("Usage: {usage}", usage="/progress T PCT TEXT")
    item = actions.progress(ctx.session, ctx.registered, _item_id(pieces[0]), pieces[1], pieces[2], ctx.now)
    return [Reply(ctx.t("Action item #{item}: progress {pct}%.", item=item.id, pct=item.progress))]


def done(ctx: Ctx, args: str) -> list[Reply]:
    item, issue = actions.done(ctx.session, ctx.registered, _item_id(one_arg(args, "/done T")), ctx.now)
    if issue.status == "done":
        return [
            Reply(
                ctx.t(
                    "Action item #{item} is done, and with it all the work on issue #{id}; its residents are asked to rate it.",
                    item=item.id,
                    id=issue.id,
                )
            )
        ]
    return [Reply(ctx.t("Action item #{item} is done.", item=item.id))]


def rate(ctx: Ctx, args: str) -> list[Reply]:
    pieces = args.split(maxsplit=2)
    if len(pieces) < 2:
        raise Refused("Usage: {usage}", usage="/rate N 1-5 [WHY]")
    rating, verdict = actions.rate(
        ctx.session,
        ctx.registered,
        flow.parse_id(pieces[0]),
        pieces[1],
        pieces[2] if len(pieces) > 2 else "",
        ctx.now,
    )
    replies = [
        Reply(
            ctx.t("Thank you: your rating of issue #{id} is {score}.", id=rating.issue_id, score=rating.score)
        )
    ]
    if verdict is not None:
        replies.append(
            Reply(
                ctx.t(
                    "Everyone asked has rated; the verdict on issue #{id}: {status}.",
                    id=rating.issue_id,
                    status=fmt.status(ctx.t, verdict),
                )
            )
        )
    return replies


def _tz(ctx: Ctx) -> str:
    return ctx.timezone(ctx.registered.community_id)
