"""How issues look in a chat: status names, scopes, the one-line and the full view."""

from __future__ import annotations

from sqlalchemy.orm import Session

from flows import actions, counting, digest, votes
from flows import issues as flow
from flows.errors import Refused
from flows.when import local
from locales import N_, Translator
from storage.models import ActionItem, Issue, Poll, Scope

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


def message(t: Translator, msgid: str, params: dict) -> str:
    """A refusal or a queued message in the reader's language; a `status` parameter shown by its name."""
    if params.get("status") in STATUS_NAMES:
        params = {**params, "status": status(t, str(params["status"]))}
    return t(msgid, **params)


def refusal(t: Translator, refused: Refused) -> str:
    return message(t, refused.msgid, refused.params)


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
    for poll in votes.polls_of(session, issue.id):
        parts += ["", *poll_lines(session, t, issue, poll, tz)]
    items = actions.items_of(session, issue.id)
    if items:
        parts += ["", *(item_line(t, item, tz) for item in items)]
    if issue.rating_round:
        count, average = actions.ratings_of(session, issue.id, issue.rating_round)
        parts.append(
            t(
                "Ratings: {count}, average {average}",
                count=count,
                average=average if average is not None else "-",
            )
        )
    comments = flow.comments_of(session, issue)
    if comments:
        parts += ["", t("Comments ({n}):", n=len(comments))]
        parts += [f"C{c.id} {c.author}: {c.text}" for c in comments]
    return "\n".join(parts)


# --- votes, items and ratings -------------------------------------------------------------------

KIND_NAMES = {
    "approve": N_("Agree / disagree / abstain"),
    "single": N_("One option (single choice)"),
    "multiple": N_("Several options (multiple choice)"),
}
APPROVE_NAMES = {1: N_("agree"), 2: N_("disagree"), 3: N_("abstain")}
UNIT_CHOICES = {
    "household": N_("Per household (one vote per home)"),
    "person": N_("Per person (one vote each)"),
}
UNIT_NAMES = {
    "household": N_("One vote per home; {n} homes may vote"),
    "person": N_("One vote per person; {n} people may vote"),
}
BALLOT_NAMES = {
    True: N_("Ballots: anonymous, final once cast"),
    False: N_("Ballots: named, changeable until the close"),
}
RULE_WORDS = {True: N_("more than {fraction}"), False: N_("at least {fraction}")}
BAR = "█"


def option_label(t: Translator, kind: str, number: int, label: str) -> str:
    return t(APPROVE_NAMES[number]) if kind == "approve" and number in APPROVE_NAMES else label


def rule_words(t: Translator, rule: str) -> str:
    parsed = counting.Rule.parse(rule)
    return t(RULE_WORDS[parsed.strict], fraction=f"{parsed.num}/{parsed.den}")


def rules_text(
    t: Translator, kind: str, quorum: str, passing: str, eligible: int, k: int, major: bool
) -> str:
    lines = [t("A major matter (重大事项).")] if major else []
    least = counting.Rule.parse(quorum).least(eligible)
    lines.append(
        t(
            "Valid when {rule} of the {n} take part (at least {least}).",
            rule=rule_words(t, quorum),
            n=eligible,
            least=least,
        )
    )
    share = rule_words(t, passing)
    if kind == "approve":
        lines.append(
            t("Passes when {rule} of those taking part agree; abstaining counts against.", rule=share)
        )
    elif kind == "single":
        lines.append(
            t("The leading option wins if strictly ahead with {rule} of those taking part.", rule=share)
        )
    else:
        lines.append(
            t(
                "Each option with {rule} of those taking part is adopted, at most {k}, most first.",
                rule=share,
                k=k,
            )
        )
    return "\n".join(lines)


def poll_lines(session: Session, t: Translator, issue: Issue, poll: Poll, tz: str) -> list[str]:
    kind = t(KIND_NAMES[poll.kind])
    if poll.closed_at is None:
        head = t("Vote ({kind}): open until {time}", kind=kind, time=local(poll.closes_at, tz))
        turnout = votes.turnout(session, poll)
        counts = None if poll.secret else votes.running_votes(session, poll)
    else:
        head = t("Vote ({kind}): closed {time}", kind=kind, time=local(poll.closed_at, tz))
        turnout = poll.turnout or 0
        counts = {o.number: o.votes for o in votes.options_of(session, poll)}
    lines = [head, t(BALLOT_NAMES[poll.secret]), t(UNIT_NAMES[poll.unit], n=poll.eligible)]
    lines.append(t("Turnout: {turnout} of {eligible}", turnout=turnout, eligible=poll.eligible))
    for option in votes.options_of(session, poll):
        label = option_label(t, poll.kind, option.number, option.label)
        if counts is None:
            lines.append(f"[{option.number}] {label}")
            continue
        v = counts.get(option.number, 0)
        bar = BAR * round(10 * v / turnout) if turnout else ""
        mark = " ✓" if option.adopted else ""
        lines.append(f"[{option.number}] {label} — {v} {bar}{mark}".rstrip())
    if poll.closed_at is None:
        lines.append(t("Vote with /vote {id} NUMBER (at most {k}).", id=issue.id, k=poll.max_choices))
    else:
        lines.append(
            t(
                "Result: {status}; quorum {met}.",
                status=status(t, poll.outcome or "rejected"),
                met=t("met") if poll.quorum_met else t("not met"),
            )
        )
    return lines


def item_line(t: Translator, item: ActionItem, tz: str) -> str:
    if item.done_at is not None:
        return t(
            "Action item #{item}: {title} — done {date}",
            item=item.id,
            title=item.title,
            date=local(item.done_at, tz),
        )
    return t(
        "Action item #{item}: {title} — {owner}, due {due}, progress {pct}%",
        item=item.id, title=item.title, owner=item.owner.name, due=local(item.due_at, tz), pct=item.progress,
    )  # fmt: skip


def digest_lines(session: Session, t: Translator, d: digest.Digest, tz: str) -> list[str]:
    """A digest, section by section; sections with nothing in them are left out."""
    lines = [t("From {start} to {end}", start=local(d.start, tz), end=local(d.end, tz))]

    def section(title: str, rows: list[str]) -> None:
        if rows:
            lines.extend(["", title, *rows])

    section(t("New issues:"), [line(t, i) for i in d.new])
    section(t("Now in discussion:"), [line(t, i) for i in d.discussing])
    section(
        t("Votes closing within a day:"),
        [
            t(
                "#{id} {title}: {turnout} of {eligible} have voted",
                id=i.id,
                title=i.title,
                turnout=n,
                eligible=p.eligible,
            )
            for i, p, n in d.closing
        ],
    )
    section(
        t("Results:"),
        [
            t("#{id} {title}: {status}", id=i.id, title=i.title, status=status(t, p.outcome or "rejected"))
            for i, p in d.results
        ],
    )
    section(t("Action items due within a day:"), [item_line(t, item, tz) for item in d.due])
    section(t("Action items overdue:"), [item_line(t, item, tz) for item in d.overdue])
    section(
        t("Satisfaction of closed issues:"),
        [
            t(
                "#{id} {title}: {count} ratings, average {average}",
                id=i.id,
                title=i.title,
                count=c,
                average=a if a is not None else "-",
            )
            for i, c, a in d.satisfaction
        ],
    )
    if d.topics:
        lines.extend(["", t("Hot topics: {words}", words="、".join(d.topics))])
    if d.head is not None:
        lines.extend(
            [
                "",
                t(
                    "The community's record stands at entry #{seq}, hash {hash}.",
                    seq=d.head.seq,
                    hash=d.head.hash,
                ),
            ]
        )
    return lines
