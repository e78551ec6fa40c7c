"""Ballots by button (diagram: ballot.mmd). Payloads say which poll they answer, so a stale or
forged one is refused and never taken for another vote:

- `v:<poll>:<n>` on an open vote (in a group's vote message, or in a private chat): choice n. A
  single choice (or 同意/反对/弃权) is recorded, or changes the ballot; the same choice again is
  "already recorded". In a multiple-choice vote the press adds n to the voter's ballot (up to k)
  or takes it out again.
- `v:<poll>:s<mask>:<n|c>` on a secret vote, in the private chat only: the choices picked so far
  travel in the payload (`mask`, a bit per option), never in stored dialog data; n picks or
  unpicks a choice, `c` casts the ballot, which is final.

A group's vote message of a secret vote carries no buttons, only a pointer to the private chat
(`start=vote_<poll>`), where the ballot opens.
"""

from __future__ import annotations

import re
from dataclasses import replace

from flows import votes
from flows.errors import Refused
from flows.issues import require_registered
from flows.messages import STALE, Option, Reply
from handlers import format as fmt
from handlers.context import Ctx
from locales import Translator
from storage.models import Issue, Poll, PollOption

_OPEN = re.compile(r"^v:(\d{1,10}):(\d{1,2})$")
_SECRET = re.compile(r"^v:(\d{1,10}):s(\d{1,7}):(\d{1,2}|c)$")


def start_of(poll_id: int) -> str:
    """What a pointer to the private chat starts there: this poll's ballot."""
    return f"vote_{poll_id}"


def _labels(t: Translator, poll: Poll, options: list[PollOption]) -> list[tuple[int, str]]:
    return [(o.number, fmt.option_label(t, poll.kind, o.number, o.label)) for o in options]


def in_group(t: Translator, poll: Poll, options: list[PollOption], message: Reply) -> Reply:
    """A group's vote message: a button per choice of an open vote; a secret vote's opens in the
    private chat."""
    if poll.secret:
        return Reply(
            message.text + "\n" + t("A secret vote: each cast in their private chat."),
            start=start_of(poll.id),
        )
    return Reply(
        message.text, tuple(Option(label, f"v:{poll.id}:{n}") for n, label in _labels(t, poll, options))
    )


def _secret_keyboard(t: Translator, poll: Poll, options: list[PollOption], mask: int) -> tuple[Option, ...]:
    buttons = [
        Option(("☑ " if mask >> (n - 1) & 1 else "☐ ") + label, f"v:{poll.id}:s{mask}:{n}")
        for n, label in _labels(t, poll, options)
    ]
    if mask:
        buttons.append(Option(t("Cast this secret ballot (final)"), f"v:{poll.id}:s{mask}:c"))
    return tuple(buttons)


def private_ballot(ctx: Ctx, poll: Poll, mask: int = 0) -> Reply:
    """The ballot in the private chat: the poll as `/issue` shows it, and its buttons."""
    issue = ctx.session.get(Issue, poll.issue_id)
    assert issue is not None
    options = votes.options_of(ctx.session, poll)
    text = "\n".join(fmt.poll_lines(ctx.session, ctx.t, issue, poll, ctx.timezone(issue.community_id)))
    if poll.secret:
        return Reply(text, _secret_keyboard(ctx.t, poll, options, mask))
    return Reply(text, tuple(Option(label, f"v:{poll.id}:{n}") for n, label in _labels(ctx.t, poll, options)))


def open_for(ctx: Ctx, poll_id: int) -> Poll:
    """The poll of the sender's community, still open; or the button is stale."""
    poll = ctx.session.get(Poll, poll_id)
    issue = ctx.session.get(Issue, poll.issue_id) if poll else None
    member = ctx.member
    if poll is None or issue is None or member is None or issue.community_id != member.community_id:
        raise Refused(STALE)
    if poll.closed_at is not None or ctx.now >= poll.closes_at:
        raise Refused("The vote on issue #{n} has closed.", n=issue.id)
    return poll


def press(ctx: Ctx, payload: str) -> list[Reply]:
    """A vote button pressed: answered on the button (an alert), or by the ballot's next state."""
    if ctx.member is None:
        require_registered(None)
    secret = _SECRET.match(payload)
    found = secret or _OPEN.match(payload)
    if found is None:
        raise Refused(STALE)
    poll = open_for(ctx, int(found.group(1)))
    options = votes.options_of(ctx.session, poll)
    if poll.secret != bool(secret):
        raise Refused(STALE)
    if secret:
        return _secret_press(ctx, poll, options, int(secret.group(2)), secret.group(3))
    number = int(found.group(2))
    if not 1 <= number <= len(options):
        raise Refused(STALE)
    return [_open_press(ctx, poll, options, number)]


def _open_press(ctx: Ctx, poll: Poll, options: list[PollOption], number: int) -> Reply:
    had = votes.ballot_of(ctx.session, ctx.voter, poll)
    if poll.kind != "multiple":
        choices = [number]
    elif had is not None and number in had:
        choices = [n for n in had if n != number]
    else:
        choices = sorted({*(had or []), number})
    if had == choices or not choices:
        return Reply(ctx.t("Your ballot on issue #{id} is already recorded: {choices}.", id=poll.issue_id,
                           choices=_named(ctx.t, poll, options, had or [number])), alert=True)  # fmt: skip
    if len(choices) > poll.max_choices:
        raise Refused("You may choose at most {n} here.", n=poll.max_choices)
    votes.vote(ctx.session, ctx.voter, poll.issue_id, [str(n) for n in choices], ctx.now, ctx.key)
    named = _named(ctx.t, poll, options, choices)
    return Reply(
        ctx.t("Your ballot on issue #{id} is recorded: {choices}.", id=poll.issue_id, choices=named),
        alert=True,
    )


def _secret_press(ctx: Ctx, poll: Poll, options: list[PollOption], mask: int, action: str) -> list[Reply]:
    if ctx.incoming.is_group:  # never: a secret ballot is cast in the private chat
        raise Refused(STALE)
    if mask >= 1 << len(options):
        raise Refused(STALE)
    if action != "c":
        number = int(action)
        if not 1 <= number <= len(options):
            raise Refused(STALE)
        bit = 1 << (number - 1)
        mask = (mask ^ bit) if poll.kind == "multiple" else (0 if mask == bit else bit)
        if bin(mask).count("1") > poll.max_choices:
            raise Refused("You may choose at most {n} here.", n=poll.max_choices)
        return [replace(private_ballot(ctx, poll, mask), replace=True, secret=mask != 0)]
    choices = [n for n in range(1, len(options) + 1) if mask >> (n - 1) & 1]
    if not choices:
        raise Refused("Say which choice, by its number.")
    votes.vote(ctx.session, ctx.voter, poll.issue_id, [str(n) for n in choices], ctx.now, ctx.key)
    return [
        Reply(
            ctx.t("Your secret ballot on issue #{id} is cast: {choices}. It cannot be changed.",
                  id=poll.issue_id, choices=_named(ctx.t, poll, options, choices)),
            replace=True,
            secret=True,
        )
    ]  # fmt: skip


def _named(t: Translator, poll: Poll, options: list[PollOption], choices: list[int]) -> str:
    labels = dict(_labels(t, poll, options))
    return ", ".join(labels[n] for n in choices)
