"""Decide (居民定): bot-managed polls, their eligible units, ballots, and the count at the close.

Eligibility is fixed when a poll opens: the people (or households) living in its scope
then, with or without a chat account. An open poll keeps one changeable ballot per unit;
a secret poll keeps only that a unit took part and, in the same transaction, its running
tallies sealed with the ballot key (storage/seal.py): one value per poll that every ballot
rewrites, so nothing stored, not even which rows a ballot's transaction touched, links a
person to a choice. The close opens the seal and writes the totals to every option row.

The poll row orders ballots and the close: an open ballot holds it shared, a secret ballot
(which rewrites the sealed value) and the close hold it alone, and each re-checks that the
poll is still open once it has it. A ballot is either counted or refused as too late. (SQLite
writes one transaction at a time: there the read of the open poll already is the truth.)
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Insert, Integer, Select, bindparam, case, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flows import audit, counting, lifecycle, outbox, people, quiet, schedule, scopes, settings
from flows import issues as issue_flow
from flows.errors import Refused
from flows.numbers import whole
from flows.when import local
from storage.models import (
    Ballot,
    Eligible,
    Household,
    Issue,
    Participation,
    Person,
    Poll,
    PollOption,
    Scope,
)
from storage.prepared import Prepared
from storage.rows import locked, one_writer
from storage.seal import BallotKey, SealBroken

log = logging.getLogger("yishi.votes")

KINDS = ("approve", "single", "multiple")
UNITS = ("household", "person")
APPROVE = ("同意", "反对", "弃权")
OPENERS = ("building_leader", "committee")
OPTION_MAX = 20
LABEL_MAX = 100


def open_poll_of(session: Session, issue: Issue) -> Poll | None:
    return session.scalar(select(Poll).where(Poll.issue_id == issue.id, Poll.closed_at.is_(None)))


def polls_of(session: Session, issue_id: int) -> list[Poll]:
    return list(session.scalars(select(Poll).where(Poll.issue_id == issue_id).order_by(Poll.id)))


def options_of(session: Session, poll: Poll) -> list[PollOption]:
    return list(
        session.scalars(select(PollOption).where(PollOption.poll_id == poll.id).order_by(PollOption.number))
    )


def rules_of(session: Session, community_id: int) -> dict[str, str]:
    return {key: str(settings.get(session, community_id, key)) for key in counting.DEFAULT_RULES}


# --- opening ----------------------------------------------------------------------------------


def check_opener(session: Session, person: Person, issue: Issue) -> None:
    """Refuses unless the person may open a vote on the issue now."""
    if not scopes.leads(session, person, issue.scope, OPENERS):
        raise Refused(
            "Only the building's leader or the committee can open a vote on issue #{n}.", n=issue.id
        )
    if issue.status not in ("discussing", "rejected", "no_quorum"):
        raise Refused(
            "Issue #{n} is {status}; a vote opens on an issue in discussion.", n=issue.id, status=issue.status
        )


def eligible_units(session: Session, scope: Scope, unit: str) -> list[int]:
    """The ids of the people, or households, living in the scope now (moved-out people are not)."""
    column = Person.id if unit == "person" else Person.household_id
    return list(
        session.scalars(
            select(column)
            .distinct()
            .join(Household, Household.id == Person.household_id)
            .join(Scope, Scope.id == Household.building_id)
            .where(scopes.inside(Scope.path, scope.path))
            .where(Person.moved_out.is_(False))
            .order_by(column)
        )
    )


def clean_options(kind: str, text: str) -> list[str]:
    if kind == "approve":
        return list(APPROVE)
    labels = [" ".join(p.split()) for p in text.replace("；", ";").split(";")]
    labels = [label for label in labels if label]
    if len(labels) < 2:
        raise Refused("Give at least two options, separated by ;")
    if len(labels) > OPTION_MAX or any(len(label) > LABEL_MAX for label in labels):
        raise Refused("At most {n} options of at most {m} characters each.", n=OPTION_MAX, m=LABEL_MAX)
    if len(set(labels)) != len(labels):
        raise Refused("Two options have the same text.")
    return labels


def check_closing(session: Session, issue: Issue, closes_at: datetime, now: datetime) -> None:
    longest = settings.get_int(session, issue.community_id, "vote_max_days")
    if closes_at <= now:
        raise Refused("That time has already passed.")
    if closes_at > now + timedelta(days=longest):
        raise Refused("A vote may stay open at most {n} days.", n=longest)


def open_poll(
    session: Session,
    opener: Person,
    issue: Issue,
    *,
    kind: str,
    labels: list[str],
    k: int,
    closes_at: datetime,
    secret: bool,
    unit: str,
    now: datetime,
    tz: str,
    key: BallotKey,
) -> Poll:
    issue = issue_flow.lock(session, issue.id)  # one vote opens, on an issue still in discussion
    check_opener(session, opener, issue)
    check_closing(session, issue, closes_at, now)
    units = eligible_units(session, issue.scope, unit)
    if not units:
        raise Refused(
            "Nobody in {scope} may vote: a vote cannot open without eligible voters.", scope=issue.scope.path
        )
    poll = Poll(
        issue_id=issue.id, scope_id=issue.scope_id, opener_id=opener.id, kind=kind, unit=unit, secret=secret,
        max_choices=k if kind == "multiple" else 1, major=issue.major, rules=rules_of(session, issue.community_id),
        opens_at=now, closes_at=closes_at, eligible=len(units),
    )  # fmt: skip
    session.add(poll)
    session.flush()
    if secret:
        poll.sealed = key.seal(poll.id, [0] * len(labels))
    session.execute(
        PollOption.__table__.insert(),
        [
            {"poll_id": poll.id, "number": n, "label": label, "votes": 0, "adopted": False}
            for n, label in enumerate(labels, 1)
        ],
    )
    session.execute(Eligible.__table__.insert(), [{"poll_id": poll.id, "unit_id": u} for u in units])
    lifecycle.move(
        session, issue, "voting", at=now, actor_id=opener.id,
        detail={"poll": poll.id, "kind": kind, "unit": unit, "secret": secret, "eligible": len(units)},
    )  # fmt: skip
    schedule.at(session, "close_poll", poll.id, closes_at)
    for before in schedule.VOTE_REMINDERS:
        # a reminder due in quiet hours that end after the close goes before they begin, or not at all
        at = quiet.reminder_at(session, issue.community_id, closes_at - before, closes_at, now, tz)
        if at is not None and at > now:
            hours = int(before.total_seconds() // 3600)
            schedule.at(session, "remind_vote", poll.id, at, key=f"remind_vote:{poll.id}:{hours}")
    outbox.notify_all(
        session, voter_ids(session, poll), now,
        "A vote has opened on issue #{id} {title}; it closes at {closes}. /issue {id} shows the choices, /vote {id} CHOICE votes.",
        reason=f"poll:{poll.id}", id=issue.id, title=issue.title, closes=local(closes_at, tz),
    )  # fmt: skip
    outbox.announce(
        session, issue.scope, now, "A vote has opened on issue #{id} {title}; it closes at {closes}.",
        live=True, reason=f"poll:{poll.id}", id=issue.id, title=issue.title, closes=local(closes_at, tz), poll=poll.id,
    )  # fmt: skip
    return poll


def voters(session: Session, poll: Poll) -> list[Person]:
    """Everyone who may cast a ballot in the poll (for a household poll, every member)."""
    return list(session.scalars(select(Person).where(Person.id.in_(_voters(poll))).order_by(Person.id)))


def voter_ids(session: Session, poll: Poll) -> list[int]:
    return list(session.scalars(_voters(poll)))


def _voters(poll: Poll) -> Select[tuple[int]]:
    column = Person.id if poll.unit == "person" else Person.household_id
    return (
        select(Person.id)
        .join(Eligible, Eligible.unit_id == column)
        .where(Eligible.poll_id == poll.id, Person.moved_out.is_(False))
    )


# --- voting -----------------------------------------------------------------------------------


def parse_choices(words: list[str], poll: LivePoll, count: int) -> list[int]:
    numbers = []
    for word in words:
        number = whole(word, digits=3)
        if number is None or not 1 <= number <= count:
            raise Refused(
                "{value} is not a choice: use the numbers 1–{n} that /issue shows.", value=word, n=count
            )
        numbers.append(number)
    if not numbers:
        raise Refused("Say which choice, by its number.")
    if len(set(numbers)) != len(numbers):
        raise Refused("Each choice only once, please.")
    limit = poll.max_choices if poll.kind == "multiple" else 1
    if len(numbers) > limit:
        raise Refused("You may choose at most {n} here.", n=limit)
    return sorted(numbers)


# the statements of every ballot, built once (building them costs more than running them)
# the voter's unit in a poll: themselves, or their household
_UNIT = case(
    (Poll.unit == "person", bindparam("person", type_=Integer)), else_=bindparam("household", type_=Integer)
)
_OPEN_POLL = Prepared(  # the open poll of an issue, a row per option, with the voter's unit's eligibility and open ballot
    select(
        Poll.id, Poll.issue_id, Poll.kind, Poll.unit, Poll.secret, Poll.max_choices, Poll.closes_at,
        Poll.sealed, PollOption.number, PollOption.label,
        exists().where(Eligible.poll_id == Poll.id, Eligible.unit_id == _UNIT).label("eligible"),
        select(Ballot.id).where(Ballot.poll_id == Poll.id, Ballot.unit_id == _UNIT).scalar_subquery().label("ballot"),
        select(Ballot.voter_id).where(Ballot.poll_id == Poll.id, Ballot.unit_id == _UNIT).scalar_subquery().label("ballot_voter"),
    )
    .join(Issue, Issue.id == Poll.issue_id)
    .join(PollOption, PollOption.poll_id == Poll.id)
    .where(Issue.id == bindparam("issue"), Issue.community_id == bindparam("community"), Poll.closed_at.is_(None))
    .order_by(PollOption.number)
)  # fmt: skip


def _cast() -> Insert:
    """A first ballot, inserted only while the poll is open, holding the poll shared until commit
    (PostgreSQL): the check and the hold in the statement that casts it."""
    b = Ballot.__table__
    columns = ("unit_id", "voter_id", "proxy_id", "choices", "cast_at")
    values = [bindparam(c, type_=b.c[c].type) for c in columns]
    open_poll = select(Poll.id, *values).where(Poll.id == bindparam("poll"), Poll.closed_at.is_(None))
    return (
        b.insert()
        .from_select(["poll_id", *columns], open_poll.with_for_update(read=True))
        .execution_options(preserve_rowcount=True)
    )


_CAST = Prepared(_cast())
_CHANGE = Ballot.__table__.update().where(Ballot.__table__.c.id == bindparam("ballot"))
_TAKEN = select(Participation.id).where(
    Participation.poll_id == bindparam("poll"), Participation.unit_id == bindparam("unit")
)
_PARTICIPATE = Participation.__table__.insert()
_STILL_OPEN = select(Poll.sealed).where(Poll.id == bindparam("poll"), Poll.closed_at.is_(None))
# an open ballot shares the poll with other ballots; a secret one rewrites its sealed tally
_HOLD_OPEN = _STILL_OPEN.with_for_update(read=True)
_HOLD_SECRET = locked(_STILL_OPEN)
_RESEAL = Poll.__table__.update().where(Poll.__table__.c.id == bindparam("poll"))
_PLAIN_TALLY = (
    select(PollOption.votes).where(PollOption.poll_id == bindparam("poll")).order_by(PollOption.number)
)


class LivePoll(NamedTuple):
    """What a ballot needs of its poll (read as plain values: a ballot is the busiest message)."""

    id: int
    issue_id: int
    kind: str
    unit: str
    secret: bool
    max_choices: int
    closes_at: datetime


class Found(NamedTuple):
    """The issue's open poll as a ballot finds it."""

    poll: LivePoll
    labels: dict[int, str]  # by option number
    sealed: str | None
    eligible: bool  # the voter's unit
    ballot: int | None  # the unit's open ballot, if any, and who cast it
    ballot_voter: int | None


def _live_poll(
    session: Session, person: people.Member, issue_id: int, now: datetime, voter: people.Member | None = None
) -> Found:
    """The issue's open poll (in the person's community), with what the voter's unit has to do
    with it, in one query."""
    voter = voter or person
    rows = _OPEN_POLL.rows(
        session,
        {
            "issue": issue_id,
            "community": person.community_id,
            "person": voter.id,
            "household": voter.household_id,
        },
    )
    if not rows:
        issue_flow.get_issue(session, person, issue_id)  # an unknown issue is refused as such
        raise Refused("There is no open vote on issue #{n}.", n=issue_id)
    poll = LivePoll(*rows[0][:7])
    if now >= poll.closes_at:
        raise Refused("The vote on issue #{n} has closed.", n=issue_id)
    first = rows[0]
    return Found(
        poll,
        {row.number: row.label for row in rows},
        first.sealed,
        bool(first.eligible),
        first.ballot,
        first.ballot_voter,
    )


def unit_of(poll_unit: str, member: people.Member) -> int | None:
    """Who votes in a poll: the person, or their household (None: they have no home)."""
    return member.id if poll_unit == "person" else member.household_id


def live_poll(session: Session, person: people.Member, issue_id: int, now: datetime) -> LivePoll:
    """The issue's open poll (or a refusal saying why there is none)."""
    return _live_poll(session, person, issue_id, now).poll


def vote(
    session: Session,
    voter: people.Member,
    issue_id: int,
    words: list[str],
    now: datetime,
    key: BallotKey,
    proxy: Person | None = None,
) -> tuple[LivePoll, list[str], bool]:
    """Record a ballot; the poll, the labels chosen, and whether an earlier open ballot was changed."""
    found = _live_poll(session, proxy or voter, issue_id, now, voter)
    poll, labels, sealed = found.poll, found.labels, found.sealed
    conn = session.connection()  # plain values through Core: a ballot is the busiest message
    choices = parse_choices(words, poll, len(labels))
    # held until commit: a close waits for this ballot, or this ballot finds the poll closed (a first
    # open ballot is held by the statement that casts it)
    if not one_writer(session) and (poll.secret or found.ballot is not None):
        held = conn.execute(_HOLD_SECRET if poll.secret else _HOLD_OPEN, {"poll": poll.id}).first()
        if held is None:
            raise Refused("The vote on issue #{n} has closed.", n=issue_id)
        sealed = held[0]
    unit = unit_of(poll.unit, voter)
    if not found.eligible or unit is None:
        raise Refused("{name} is not eligible in the vote on issue #{n}.", name=voter.name, n=issue_id)
    try:
        changed = (
            _secret_ballot(session, poll, unit, voter, choices, key, sealed, len(labels))
            if poll.secret
            else _open_ballot(
                session, poll, unit, voter, choices, proxy, now, found.ballot, found.ballot_voter
            )
        )
    except IntegrityError:  # another ballot of the same unit was recorded at the same moment and won
        raise Refused(
            "A ballot for you or your household was recorded at the same moment; /issue {n} shows the vote.",
            n=issue_id,
        ) from None
    detail: dict = {"poll": poll.id}
    if not poll.secret:
        detail |= {"choices": choices, "changed": changed} | ({"proxy_for": voter.id} if proxy else {})
    audit.append(
        session, at=now, action="proxy vote" if proxy else "vote", community_id=voter.community_id,
        actor_id=(proxy or voter).id, issue_id=issue_id, detail=detail,
    )  # fmt: skip
    return poll, [labels[n] for n in choices], changed


def _secret_ballot(
    session: Session,
    poll: LivePoll,
    unit: int,
    voter: people.Member,
    choices: list[int],
    key: BallotKey,
    sealed: str | None,
    options: int,
) -> bool:
    conn = session.connection()
    if conn.execute(_TAKEN, {"poll": poll.id, "unit": unit}).first() is not None:
        if poll.unit == "household":
            raise Refused("Your household has already voted; a secret ballot is final.")
        raise Refused("You have already voted; a secret ballot is final.")
    counts = _tallies(session, poll.id, sealed, options, key, poll.issue_id)
    for number in choices:
        counts[number - 1] += 1
    conn.execute(_PARTICIPATE, {"poll_id": poll.id, "unit_id": unit, "voter_id": voter.id})
    conn.execute(_RESEAL, {"poll": poll.id, "sealed": key.seal(poll.id, counts)})
    if sealed is None:  # a poll opened before tallies were sealed: its plain counts go now
        _write_options(session, poll.id, dict.fromkeys(range(1, options + 1), 0), set())
    return False


def _tallies(
    session: Session, poll_id: int, sealed: str | None, options: int, key: BallotKey, issue_id: int
) -> list[int]:
    """A secret poll's running counts of options 1…n; a key that cannot open them is refused
    (and logged for the operator), never taken for zero."""
    if sealed is None:  # opened before migration 0005 sealed tallies: still plain
        return list(session.connection().execute(_PLAIN_TALLY, {"poll": poll_id}).scalars())
    try:
        return key.unseal(poll_id, sealed, options)
    except SealBroken as exc:
        log.error(
            "the ballot key does not open the sealed tally of %s: is YISHI_BALLOT_KEY the one it was sealed with?",
            exc,
        )
        raise Refused(
            "The secret vote on issue #{n} cannot be counted: this server's ballot key does not open its sealed tally. Nothing was changed; the operator must restore the key it was sealed with.",
            n=issue_id,
        ) from None


def _write_options(session: Session, poll_id: int, votes: dict[int, int], adopted: set[int]) -> None:
    """Every option row of the poll rewritten in one statement, whatever changed."""
    table = PollOption.__table__
    session.execute(
        table.update()
        .where(table.c.poll_id == poll_id)
        .values(
            votes=case(votes, value=table.c.number, else_=0) if votes else 0,
            adopted=table.c.number.in_(sorted(adopted)),
        )
    )


def _open_ballot(
    session: Session,
    poll: LivePoll,
    unit: int,
    voter: people.Member,
    choices: list[int],
    proxy: Person | None,
    now: datetime,
    ballot_id: int | None,
    ballot_voter: int | None,
) -> bool:
    row = {"voter_id": voter.id, "proxy_id": proxy.id if proxy else None, "choices": choices, "cast_at": now}
    if ballot_id is None:
        if _CAST.rowcount(session, {"poll": poll.id, "unit_id": unit, **row}) != 1:
            raise Refused("The vote on issue #{n} has closed.", n=poll.issue_id)
        return False
    if ballot_voter != voter.id:
        if proxy is not None:
            raise Refused("The household of {name} has already voted.", name=voter.name)
        raise Refused("Your household has already voted; only the member who voted can change it.")
    session.connection().execute(_CHANGE, {"ballot": ballot_id, **row})
    return True


def proxy_vote(
    session: Session,
    leader: Person,
    issue_id: int,
    name: str,
    words: list[str],
    now: datetime,
    key: BallotKey,
) -> tuple[Person, LivePoll]:
    voter = people.find(session, name, leader.community_id)
    if voter.id == leader.id:
        raise Refused("Vote for yourself with /vote.")
    home = scopes.home(session, voter)
    if home is None or not scopes.leads(session, leader, home, ("building_leader",)):
        raise Refused("You can enter ballots only for residents of your own building.")
    if people.has_account(session, voter.id):
        raise Refused("{name} has a chat account and votes in person.", name=voter.name)
    poll = _live_poll(session, leader, issue_id, now).poll
    if poll.secret:
        raise Refused("A secret ballot cannot be entered for someone else.")
    vote(session, voter, issue_id, words, now, key, proxy=leader)
    return voter, poll


# --- counting at the close ----------------------------------------------------------------------


def ballot_of(session: Session, voter: people.Member, poll: Poll) -> list[int] | None:
    """The choices of the voter's unit's ballot in an open poll, if it has voted."""
    unit = unit_of(poll.unit, voter)
    return session.scalar(select(Ballot.choices).where(Ballot.poll_id == poll.id, Ballot.unit_id == unit))


def turnout(session: Session, poll: Poll) -> int:
    table = Participation if poll.secret else Ballot
    return session.scalar(select(func.count(table.id)).where(table.poll_id == poll.id)) or 0


def running_votes(session: Session, poll: Poll) -> dict[int, int]:
    """Each option's votes so far; an open poll's ballots are public, a secret poll's are not shown."""
    counts: Counter[int] = Counter()
    for choices in session.scalars(select(Ballot.choices).where(Ballot.poll_id == poll.id)):
        counts.update(choices)
    return counts


def close(
    session: Session, poll: Poll, now: datetime, actor_id: int | None, key: BallotKey
) -> counting.Result | None:
    """Count the poll once, record the outcome, move the issue and tell the eligible; None when
    it had been closed meanwhile. The issue, then the poll, are held until commit (the order every
    flow takes them in): a ballot still being cast is waited for and counted."""
    issue = issue_flow.lock(session, poll.issue_id)
    found = session.scalar(locked(select(Poll).where(Poll.id == poll.id, Poll.closed_at.is_(None))))
    if found is None:
        return None
    poll = found
    options = options_of(session, poll)
    if poll.secret:
        counts = _tallies(session, poll.id, poll.sealed, len(options), key, issue.id)
        votes = {o.number: counts[o.number - 1] for o in options}
    else:
        counted = running_votes(session, poll)
        votes = {o.number: counted.get(o.number, 0) for o in options}
    poll.turnout = turnout(session, poll)
    result = counting.decide(
        poll.kind, poll.eligible, poll.turnout, votes, poll.rules, poll.major, poll.max_choices
    )
    poll.closed_at, poll.quorum_met, poll.outcome, poll.sealed = now, result.quorum_met, result.outcome, None
    _write_options(session, poll.id, votes, set(result.adopted))
    for option in options:
        session.expire(option)
    lifecycle.move(
        session, issue, result.outcome, at=now, actor_id=actor_id,
        detail={"poll": poll.id, "eligible": poll.eligible, "turnout": poll.turnout, "votes": votes},
    )  # fmt: skip
    outbox.notify_all(
        session, voter_ids(session, poll), now, "The vote on issue #{id} {title} has closed: {status}.",
        id=issue.id, title=issue.title, status=result.outcome, poll=poll.id,
    )  # fmt: skip
    outbox.announce(
        session, issue.scope, now, "The vote on issue #{id} {title} has closed: {status}.",
        id=issue.id, title=issue.title, status=result.outcome, poll=poll.id,
    )  # fmt: skip
    return result


def close_early(session: Session, person: Person, issue_id: int, now: datetime, key: BallotKey) -> Poll:
    issue = issue_flow.get_issue(session, person, issue_id)
    poll = open_poll_of(session, issue)
    if poll is None:
        raise Refused("There is no open vote on issue #{n}.", n=issue.id)
    if poll.opener_id != person.id and not scopes.leads(session, person, issue.scope, ("committee",)):
        raise Refused("Only the person who opened the vote or the committee can close it early.")
    if close(session, poll, now, person.id, key) is None:  # closed by its deadline meanwhile
        raise Refused("There is no open vote on issue #{n}.", n=issue.id)
    return poll


def flag_major(session: Session, person: Person, issue_id: int, now: datetime) -> Issue:
    issue = issue_flow.get_issue(session, person, issue_id, lock=True)
    if not scopes.leads(session, person, issue.scope, ("committee",)):
        raise Refused("Only committee members can flag a major matter.")
    if issue.status not in ("raised", "discussing", "rejected", "no_quorum"):
        raise Refused(
            "Issue #{n} is {status}; flag it before its vote opens.", n=issue.id, status=issue.status
        )
    if issue.major:
        raise Refused("Issue #{n} is already flagged as a major matter.", n=issue.id)
    issue.major = True
    audit.append(
        session,
        at=now,
        action="major",
        community_id=issue.community_id,
        actor_id=person.id,
        issue_id=issue.id,
    )
    return issue


def waiting_for(session: Session, person: Person, now: datetime) -> list[tuple[Issue, Poll]]:
    """Open polls where the person's unit may vote and has not."""
    units = [
        (poll_unit, unit)
        for poll_unit, unit in (("person", person.id), ("household", person.household_id))
        if unit
    ]
    found = []
    for poll_unit, unit in units:
        rows = session.execute(
            select(Issue, Poll)
            .join(Poll, Poll.issue_id == Issue.id)
            .join(Eligible, Eligible.poll_id == Poll.id)
            .where(
                Poll.closed_at.is_(None),
                Poll.closes_at > now,
                Poll.unit == poll_unit,
                Eligible.unit_id == unit,
            )
        ).all()
        for issue, poll in rows:
            table = Participation if poll.secret else Ballot
            voted = session.scalar(select(table.id).where(table.poll_id == poll.id, table.unit_id == unit))
            if voted is None:
                found.append((issue, poll))
    return found
