"""Ballots on PostgreSQL from several worker processes, against pgbench running the same SQL, and a
ballot's latency while large votes keep opening in another community.

`workers()`: 8 communities of 600 households (one resident each, an open vote a person in each,
raised, supported and opened through the dispatcher as bench/votes.py does). With 1, 2 and 4
worker processes (spawned: a process each, its own engine and dispatcher, started together on a
barrier once imported and connected), 2,400 voters drawn across the 8 communities cast a ballot
each; ballots/s is taken from the start signal until every worker is done, and exactly 2,400
ballots must be stored; the ballots are emptied between runs (audit rows stay), median of 3.

The ceiling is pgbench (`-M prepared`, as psycopg prepares a statement it runs again; 8 s after
each run of the workers, as many clients, on the same database, median of 3) running the
statements of one real ballot, captured from the engine while the dispatcher casts it (so whatever
the core code runs today is what is measured), in one transaction of its own:
- the voter is drawn at random among all 4,800 residents, never fixed: a ballot locks its
  account's row, so one voter for every client would make them queue where real ballots don't
  (two clients drawing the same voter at once is left to chance: about 1 in 1,600 at 4 clients).
  The register and accounts are laid out (and checked to be) so that a random index maps
  arithmetically to the resident's person, account and household ids, and its community to that
  community's scope, issue, poll and audit chain;
- the ballot's unit in the INSERT is fresh in every transaction, as the unique (poll_id, unit_id)
  requires: 1,000,000,000 + 10,000,000 · client + a per-client counter (instead of a random unit,
  which collides now and then over a run and would abort a client); units have no foreign key;
- the audit head read `FOR NO KEY UPDATE` is `\\gset`, and the row appended gets its seq + 1;
- every other value is the captured one. A parameter whose role is not known (by its name, or
  else by its value matching exactly one id of the voter's), a statement with a `:name` pgbench
  would take for a variable, or an executemany refuses loudly; so does a script whose first
  transaction does not store its ballot. Without /usr/bin/pgbench the ratios are not set.

`latency()`: community A (1,200 residents, an open vote as above) and community B (3,000 residents,
20 issues raised through flows/issues.py and moved straight into discussion). A spawned process,
with its own dispatcher, opens votes in B through the `/openvote` dialog as the
committee, one after the other (3,000 eligible rows and 3,000 notifications each; once out of
issues it closes its oldest vote early and opens it again), while this process casts 1,100
ballots in A one at a time, timing each `handle`. p99 in ms; at least one vote must have opened
meanwhile.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import queue
import random
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime
from multiprocessing.synchronize import Barrier as BarrierType
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

from psycopg.types.json import Json, Jsonb
from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url

from bench.common import NOW, Result
from bench.pg_common import CHANNEL, OPEN_VOTE, people_of, populate, raise_to_vote, say, scratch_database
from flows import issues as issue_flow
from flows import lifecycle
from flows.clock import FixedClock
from flows.messages import Incoming
from handlers.dispatch import Dispatcher
from storage.db import Database
from storage.models import Account, AuditChain, Ballot, Issue, Person, Poll, Scope
from storage.seal import BallotKey, new_key

PGBENCH = "/usr/bin/pgbench"
COMMUNITIES = 8
HOUSEHOLDS = 600  # a community's residents (one a household), all eligible in its vote
BALLOTS = 2400  # a run's ballots, by distinct voters drawn across the communities
WORKERS = (1, 2, 4)
RUNS = 3
PGBENCH_SECONDS = 8
WARMUP = 6  # ballots each worker casts before the first run (deleted before it)
TIMEOUT = 300.0  # seconds any wait on another process may last before the benchmark fails

A_VOTERS = 1200
B_RESIDENTS = 3000
B_ISSUES = 20
LATENCY_WARMUP = 20
LATENCY_BALLOTS = 1100


# --- the data laid out so that pgbench can find a voter by number --------------------------------


@dataclass(frozen=True)
class Community:
    scope: int  # the community's scope id
    issue: int
    poll: int
    chain: int  # its audit chain
    person0: int  # the k-th resident (0-based) is person person0 + k,
    account0: int  # with account account0 + k
    household0: int  # in household household0 + k


def _layout(db: Database, issues: dict[int, int]) -> list[Community]:
    """Each community's ids, checked: its residents' person, account and household ids run on."""
    found = []
    with db.transaction() as session:
        accounts = dict(session.execute(select(Account.person_id, Account.id)).all())
        for scope, issue in sorted(issues.items()):
            rows = session.execute(
                select(Person.id, Person.household_id)
                .where(Person.community_id == scope, Person.household_id.is_not(None))
                .order_by(Person.id)
            ).all()
            if len(rows) != HOUSEHOLDS:
                raise RuntimeError(f"community {scope} has {len(rows)} residents, not {HOUSEHOLDS}")
            person0, household0 = rows[0]
            account0 = accounts[person0]
            for k, (person, household) in enumerate(rows):
                if (person, household, accounts[person]) != (person0 + k, household0 + k, account0 + k):
                    raise RuntimeError(
                        f"community {scope}: resident {k}'s ids do not run on from the first's"
                    )
            poll = session.scalar(select(Poll.id).where(Poll.issue_id == issue, Poll.closed_at.is_(None)))
            chain = session.scalar(select(AuditChain.id).where(AuditChain.community_id == scope))
            if poll is None or chain is None:
                raise RuntimeError(f"community {scope} has no open poll or no audit chain")
            found.append(Community(scope, issue, poll, chain, person0, account0, household0))
    return found


# --- one real ballot, captured, made into a pgbench script ------------------------------------


Captured = list[tuple[str, Any, bool]]  # (statement, parameters, executemany)


def _capture(db: Database, dispatcher: Dispatcher, who: str, text: str) -> Captured:
    """The statements one message runs, with their parameters, as the driver receives them."""
    captured: Captured = []

    def listen(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        captured.append((statement, parameters, executemany))

    event.listen(db.engine, "before_cursor_execute", listen)
    try:
        dispatcher.handle(Incoming(CHANNEL, who, who, text=text))
    finally:
        event.remove(db.engine, "before_cursor_execute", listen)
    return captured


# parameters by name: the role of their value (checked against the captured ballot's)
_ROLE_BY_NAME = {
    "external_id": "ext",
    "community": "community",
    "community_id": "community",
    "issue": "issue",
    "issue_id": "issue",
    "poll": "poll",
    "poll_id": "poll",
    "unit": "unit",
    "unit_id": "unit",
    "voter_id": "person",
    "actor_id": "person",
    "person": "person",
    "person_id": "person",
    "account": "account",
    "account_id": "account",
    "household": "household",
    "household_id": "household",
    "chain": "chain",
    "chain_id": "chain",
    "chain_community": "community",
    "row_community_id": "community",
    "row_actor_id": "person",
    "row_issue_id": "issue",
    "seq": "seq",
}
# parameters whose captured value serves every transaction: they hold no id of the voter's
_CONSTANT_NAMES = frozenset(
    {"channel", "choices", "cast_at", "at", "created_at", "detail", "action", "proxy_id", "hash", "prev_hash"}
    | {"row_at", "row_action", "row_detail", "prefix"}
)
_ANONYMOUS = re.compile(
    r"^[a-z_]+_\d+$"
)  # a literal SQLAlchemy bound for us (`seq_1`, `param_1`): a constant
# how each role is written in the script
_EXPRESSION = {
    "ext": "CAST(:y_person AS TEXT)",
    "person": ":y_person",
    "unit": ":y_person",  # the poll counts a vote a person
    "account": ":y_account",
    "household": ":y_household",
    "community": ":y_community",
    "issue": ":y_issue",
    "poll": ":y_poll",
    "chain": ":y_chain",
    "fresh unit": ":y_unit",
    "seq": ":y_seq",
}
_FRESH_UNIT = re.compile(r"\s*INSERT\s+INTO\s+(ballots|participations)\b", re.IGNORECASE)
_HEAD = re.compile(
    r"\s*SELECT\b.*\baudit_chains\.seq\b.*\bFROM\s+audit_chains\b.*\bFOR\s+(NO\s+KEY\s+)?UPDATE\s*$",
    re.IGNORECASE | re.DOTALL,
)
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")
_VARIABLE = re.compile(r"(?<!:):[A-Za-z_\x80-\U0010ffff]")  # what pgbench reads as a variable
_COLON = re.compile(r":(?=[A-Za-z_\x80-\U0010ffff])")  # a colon that would start one


def _literal(value: object) -> str:
    """A value as SQL text pgbench passes on untouched (a `:` it would take for the start of a
    variable is spelt chr(58))."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Json | Jsonb):
        value = (value.dumps or json.dumps)(value.obj)
    if isinstance(value, datetime | date):
        value = value.isoformat()
    if not isinstance(value, str):
        raise RuntimeError(f"cannot write a {type(value).__name__} parameter into the pgbench script")
    parts = ["'" + part.replace("'", "''") + "'" for part in _COLON.split(value)]
    return parts[0] if len(parts) == 1 else "(" + " || chr(58) || ".join(parts) + ")"


def _pick(values: list[int]) -> str:
    """A pgbench expression of the community number :y_c giving values[c]."""
    step = values[1] - values[0] if len(values) > 1 else 0
    if all(v == values[0] + step * c for c, v in enumerate(values)):
        return f"{values[0]} + {step} * :y_c"
    return "CASE " + " ".join(f"WHEN :y_c = {c} THEN {v}" for c, v in enumerate(values)) + " ELSE -1 END"


def _render(text: str, parameters: dict, facts: dict[str, object], head_read: bool, used: set[str]) -> str:
    """The statement with each parameter written as its role's pgbench expression, or as the
    captured constant; the roles used are added to `used`."""

    def substitute(m: re.Match[str]) -> str:
        name = m.group(1)
        if name is None:
            return "%"
        if name not in parameters:
            raise RuntimeError(f"no value for %({name})s in: {text}")
        value = parameters[name]
        role = _ROLE_BY_NAME.get(name)
        if role is None and (name in _CONSTANT_NAMES or _ANONYMOUS.match(name)):
            return _literal(value)
        if role is None:  # an unknown name: an id of the voter's by its value, else a constant
            roles = [r for r, v in facts.items() if v == value and r not in ("seq", "unit")]
            if len(roles) > 1 or (isinstance(value, int) and not roles):
                raise RuntimeError(f"cannot tell what %({name})s = {value!r} is in: {text}")
            if not roles:
                return _literal(value)
            role = roles[0]
        if facts[role] != value:
            raise RuntimeError(
                f"%({name})s = {value!r} is not the voter's {role} ({facts[role]!r}) in: {text}"
            )
        if role == "unit" and _FRESH_UNIT.match(text):
            role = "fresh unit"
        if role == "seq" and not head_read:
            raise RuntimeError(f"%({name})s before the audit head was read in: {text}")
        used.add(role)
        return _EXPRESSION[role]

    return _PLACEHOLDER.sub(substitute, text)


def _script(captured: Captured, layout: list[Community], facts: dict[str, object]) -> str:
    """The pgbench script of one ballot's transaction; `facts` are the captured voter's values by
    role (and `seq`, the audit row's place: the head's seq + 1)."""
    body: list[str] = []
    used: set[str] = set()
    head_read = False
    for statement, parameters, many in captured:
        if many or not isinstance(parameters, dict):
            raise RuntimeError(f"cannot map a statement run with {type(parameters).__name__}: {statement}")
        text = re.sub(r"\s*\n\s*", " ", statement.strip())
        if _VARIABLE.search(_PLACEHOLDER.sub("", text)):
            raise RuntimeError(f"pgbench would read a variable in the statement: {text}")
        sql = _render(text, parameters, facts, head_read, used)
        if _HEAD.match(text):
            body += [sql + r" \gset yh_", r"\set y_seq :yh_seq + 1"]
            head_read = True
        else:
            body.append(sql + ";")
    header = []
    per_voter = {"ext", "person", "unit", "account", "household"}
    if used & (per_voter | {"community", "issue", "poll", "chain"}):
        header += [
            f"\\set y_i random(0, {len(layout) * HOUSEHOLDS - 1})",
            f"\\set y_c :y_i / {HOUSEHOLDS}",
            f"\\set y_k :y_i % {HOUSEHOLDS}",
        ]
    fields = {"person": "person0", "account": "account0", "household": "household0"}
    for role, name in fields.items():
        if role in used or (role == "person" and used & {"ext", "unit"}):
            header.append(f"\\set y_{role} {_pick([getattr(c, name) for c in layout])} + :y_k")
    for role in ("community", "issue", "poll", "chain"):
        if role in used:
            attr = "scope" if role == "community" else role
            header.append(f"\\set y_{role} {_pick([getattr(c, attr) for c in layout])}")
    if "fresh unit" in used:
        header += [r"\set y_n :y_n + 1", r"\set y_unit 1000000000 + :client_id * 10000000 + :y_n"]
    else:
        raise RuntimeError("the ballot inserted no row into ballots (or participations)")
    return "\n".join([*header, "BEGIN;", *body, "COMMIT;"]) + "\n"


@dataclass(frozen=True)
class PgbenchRun:
    tps: float
    transactions: int


def _pgbench(
    db: Database, script: Path, clients: int, *, seconds: int = 0, transactions: int = 0
) -> PgbenchRun:
    url = make_url(db.url)
    env = dict(os.environ, PGHOST=url.host or "127.0.0.1", PGPORT=str(url.port or 5432))
    env |= {"PGUSER": url.username or "postgres", "PGDATABASE": url.database or ""}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    length = ["-T", str(seconds)] if seconds else ["-t", str(transactions)]
    args = [PGBENCH, "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients), *length]
    out = subprocess.run(
        [*args, "-D", "y_n=0", "-f", str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=(seconds or 60) + 120,
        check=False,
    )
    tps = re.search(r"^tps = ([0-9.]+) \(without initial connection time\)", out.stdout, re.MULTILINE)
    done = re.search(r"^number of transactions actually processed: (\d+)", out.stdout, re.MULTILINE)
    failed = re.search(r"^number of failed transactions: (\d+)", out.stdout, re.MULTILINE)
    if out.returncode != 0 or not tps or not done or (failed and int(failed.group(1))):
        raise RuntimeError(f"pgbench failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return PgbenchRun(float(tps.group(1)), int(done.group(1)))


# --- ballots from worker processes --------------------------------------------------------------


def _empty_ballots(db: Database) -> None:
    """No ballots, and the tables a ballot writes vacuumed: each run, ours or pgbench's, starts
    from the same state (not from the dead row versions the run before left)."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("DELETE FROM ballots")
        conn.exec_driver_sql("VACUUM ANALYZE ballots, polls, audit_chains, audit_log, accounts")


def _stored_ballots(db: Database) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count(Ballot.id))) or 0


def _worker(
    url: str,
    key: str,
    warmup: list[tuple[str, str]],
    tasks: mp.Queue,
    reports: mp.Queue,
    start: BarrierType,
) -> None:
    """A worker process: its own engine and dispatcher; per task, ready, the start, its ballots."""
    db = Database(url)
    dispatcher = Dispatcher(db, FixedClock(NOW), BallotKey(key))
    try:
        for who, text in warmup:  # connected, statements compiled and prepared
            dispatcher.handle(Incoming(CHANNEL, who, who, text=text))
        reports.put("warm")
        while (task := tasks.get()) is not None:
            messages = [Incoming(CHANNEL, who, who, text=text) for who, text in task]
            reports.put("ready")
            start.wait(TIMEOUT)
            for message in messages:
                dispatcher.handle(message)
            reports.put("done")
    finally:
        db.dispose()


def _receive(reports: mp.Queue, procs: list[Any], what: str) -> object:
    """The next report of the processes; fails as soon as one of them has died, or after TIMEOUT."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            return reports.get(timeout=0.5)
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode is not None]
            if dead or time.monotonic() > deadline:
                try:  # what it said just before it ended
                    return reports.get(timeout=1)
                except queue.Empty:
                    raise RuntimeError(f"no {what!r} reported (exit codes of the dead: {dead})") from None


def _wait(reports: mp.Queue, what: str, count: int, procs: list[Any]) -> None:
    """`count` reports of `what` from the workers."""
    for _ in range(count):
        if (got := _receive(reports, procs, what)) != what:
            raise RuntimeError(f"a worker reported {got!r}, expected {what!r}")


def _ballots_per_second(
    db: Database, key: str, voters: list[tuple[str, int]], w: int, script: Path | None
) -> tuple[list[float], list[float]]:
    """RUNS runs of BALLOTS ballots from `w` worker processes, each followed by a pgbench run with
    `w` clients (when there is a script): ballots/s and pgbench tps of each."""
    rng = random.Random(w)
    ctx = mp.get_context("spawn")
    start = ctx.Barrier(w + 1)
    reports: mp.Queue = ctx.Queue()
    tasks: list[mp.Queue] = [ctx.Queue() for _ in range(w)]
    warm = rng.sample(voters, w * WARMUP)
    procs = [
        ctx.Process(
            target=_worker,
            args=(
                db.url,
                key,
                [(who, f"/vote {issue} 1") for who, issue in warm[i * WARMUP : (i + 1) * WARMUP]],
                tasks[i],
                reports,
                start,
            ),
            daemon=True,
        )
        for i in range(w)
    ]
    rates: list[float] = []
    tps: list[float] = []
    try:
        for p in procs:
            p.start()
        _wait(reports, "warm", w, procs)
        for _ in range(RUNS):
            _empty_ballots(db)
            ballots = [
                (who, f"/vote {issue} {rng.randint(1, 3)}") for who, issue in rng.sample(voters, BALLOTS)
            ]
            for i, q in enumerate(tasks):
                q.put(ballots[i::w])
            _wait(reports, "ready", w, procs)
            began = time.perf_counter()
            start.wait(TIMEOUT)
            _wait(reports, "done", w, procs)
            elapsed = time.perf_counter() - began
            stored = _stored_ballots(db)
            if stored != BALLOTS:
                raise RuntimeError(f"{w} workers: {stored} ballots stored, expected {BALLOTS}")
            rates.append(BALLOTS / elapsed)
            if script is not None:
                _empty_ballots(db)
                run = _pgbench(db, script, w, seconds=PGBENCH_SECONDS)
                stored = _stored_ballots(db)
                if stored != run.transactions:
                    raise RuntimeError(
                        f"pgbench: {run.transactions} transactions but {stored} ballots stored"
                    )
                tps.append(run.tps)
        for q in tasks:
            q.put(None)
        for p in procs:
            p.join(TIMEOUT)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join(10)
    return rates, tps


def workers() -> list[Result] | None:
    with scratch_database("workers") as db:
        if db is None:
            return None
        return _workers(db)


def _workers(db: Database) -> list[Result]:
    key = new_key()
    dispatcher = Dispatcher(db, FixedClock(NOW), BallotKey(key))
    populate(db, [HOUSEHOLDS] * COMMUNITIES)
    issues: dict[int, int] = {}
    voters: list[tuple[str, int]] = []  # (chat id, issue) of every resident
    for community, (residents, chief) in sorted(people_of(db).items()):
        issues[community] = raise_to_vote(db, dispatcher, residents, chief)
        voters += [(who, issues[community]) for who in residents]
    layout = _layout(db, issues)

    # one ballot captured: a resident in the middle of the last community
    here = layout[-1]
    k = HOUSEHOLDS // 2
    with db.transaction() as session:
        head = session.scalar(select(AuditChain.seq).where(AuditChain.id == here.chain))
    person = here.person0 + k
    facts: dict[str, object] = {
        "ext": str(person), "person": person, "unit": person, "account": here.account0 + k,
        "household": here.household0 + k, "community": here.scope, "issue": here.issue,
        "poll": here.poll, "chain": here.chain, "seq": (head or 0) + 1,
    }  # fmt: skip
    captured = _capture(db, dispatcher, str(person), f"/vote {here.issue} 2")
    if _stored_ballots(db) != 1:
        raise RuntimeError("the captured ballot was not stored: it is not a ballot's statements")
    text = _script(captured, layout, facts)
    db.dispose()  # the parent's connections are not part of the runs

    have_pgbench = shutil.which(PGBENCH) is not None
    with tempfile.TemporaryDirectory(prefix="yishi-pgbench-") as folder:
        script = Path(folder) / "ballot.sql"
        script.write_text(text, encoding="utf-8")
        if have_pgbench:  # one transaction first: a script that does not run fails here, loudly
            _empty_ballots(db)
            if _pgbench(db, script, 1, transactions=1).transactions != 1 or _stored_ballots(db) != 1:
                raise RuntimeError("the pgbench script did not store its ballot")
        measured = {
            w: _ballots_per_second(db, key, voters, w, script if have_pgbench else None) for w in WORKERS
        }
    results = []
    for w, (rates, tps) in measured.items():
        rate = statistics.median(rates)
        if tps:
            ceiling = statistics.median(tps)
            note = f"median of {RUNS}; pgbench same statements: {ceiling:.0f} tps"
        else:
            ceiling, note = 0.0, f"median of {RUNS}; {PGBENCH} not found: no pgbench ceiling"
        results.append(Result(f"PG ballots, {w} workers", rate, "votes/s", None, True, note))
        if tps:
            results.append(
                Result(
                    f"PG ballots / pgbench, {w} workers", rate / ceiling, "ratio", 0.5, True,
                    f"{rate:.0f} votes/s against {ceiling:.0f} pgbench tps (-c {w}, -T {PGBENCH_SECONDS})",
                )
            )  # fmt: skip
        else:
            results.append(
                Result(f"PG ballots / pgbench, {w} workers", float("nan"), "ratio", None, True, note)
            )
    one, two = (statistics.median(measured[w][0]) for w in (1, 2))
    results.append(
        Result(
            "PG ballots, 2 workers / 1 worker", two / one, "ratio", 1.0, True,
            f"{two:.0f} against {one:.0f} votes/s",
        )
    )  # fmt: skip
    return results


# --- a ballot's latency while votes open elsewhere ------------------------------------------------


def _opener(
    url: str,
    key: str,
    chief: str,
    issues: list[int],
    reports: mp.Queue,
    go: EventType,
    stop: EventType,
) -> None:
    """Opens votes on the issues one after the other until told to stop; once out of issues, closes
    its oldest open vote early and opens it again. Reports (began, ended, issue) of each opening's
    confirm step (the fan-out) in time.monotonic(), and how many votes it closed."""
    db = Database(url)
    dispatcher = Dispatcher(db, FixedClock(NOW), BallotKey(key))
    opened: list[tuple[float, float, int]] = []
    closed = 0
    fresh, open_now = deque(issues), deque[int]()
    try:
        say(dispatcher, chief, "/help")  # connected
        reports.put("ready")
        go.wait(TIMEOUT)
        while not stop.is_set():
            if not fresh:
                oldest = open_now.popleft()
                say(dispatcher, chief, f"/closevote {oldest}")
                closed += 1
                fresh.append(oldest)
            issue = fresh.popleft()
            for line in (f"/openvote {issue}", *OPEN_VOTE[:-1]):
                say(dispatcher, chief, line)
            began = time.monotonic()
            say(dispatcher, chief, OPEN_VOTE[-1])
            opened.append((began, time.monotonic(), issue))
            open_now.append(issue)
        reports.put((opened, closed))
    except Exception as exc:
        reports.put(f"the opener failed: {exc!r}")
        raise
    finally:
        db.dispose()


def latency() -> list[Result] | None:
    with scratch_database("latency") as db:
        if db is None:
            return None
        return _latency(db)


def _latency(db: Database) -> list[Result]:
    key = new_key()
    dispatcher = Dispatcher(db, FixedClock(NOW), BallotKey(key))
    populate(db, [A_VOTERS, B_RESIDENTS])
    (_, (a_residents, a_chief)), (b, (b_residents, b_chief)) = sorted(people_of(db).items())
    a_issue = raise_to_vote(db, dispatcher, a_residents, a_chief)
    b_issues = []
    with db.transaction() as session:  # B's issues straight into discussion
        building = session.scalar(select(Scope.id).where(Scope.community_id == b, Scope.level == "building"))
        assert building is not None
        for n in range(B_ISSUES):
            author = session.get(Person, int(b_residents[n]))
            assert author is not None
            issue, _ = issue_flow.raise_issue(
                session, author, building, f"第{n}号议题", f"事项说明{n}。", NOW
            )
            lifecycle.move(session, issue, "discussing", at=NOW, actor_id=author.id)
            b_issues.append(issue.id)

    ctx = mp.get_context("spawn")
    reports: mp.Queue = ctx.Queue()
    go, stop = ctx.Event(), ctx.Event()
    opener = ctx.Process(
        target=_opener, args=(db.url, key, b_chief, b_issues, reports, go, stop), daemon=True
    )
    voters = a_residents[: LATENCY_WARMUP + LATENCY_BALLOTS]
    messages = [
        Incoming(CHANNEL, who, who, text=f"/vote {a_issue} {1 + i % 3}") for i, who in enumerate(voters)
    ]
    took: list[float] = []
    try:
        opener.start()
        if (report := _receive(reports, [opener], "ready")) != "ready":
            raise RuntimeError(f"the opener did not start: {report}")
        for message in messages[:LATENCY_WARMUP]:
            dispatcher.handle(message)
        go.set()
        began = time.monotonic()
        for message in messages[LATENCY_WARMUP:]:
            t = time.perf_counter()
            dispatcher.handle(message)
            took.append(time.perf_counter() - t)
        ended = time.monotonic()
        stop.set()
        report = _receive(reports, [opener], "votes opened")
        if isinstance(report, str):
            raise RuntimeError(report)
        opened, closed = report
        opener.join(TIMEOUT)
    finally:
        stop.set()
        if opener.is_alive():
            opener.terminate()
            opener.join(10)
    with db.transaction() as session:
        stored = session.scalar(
            select(func.count(Ballot.id))
            .join(Poll, Poll.id == Ballot.poll_id)
            .where(Poll.issue_id == a_issue)
        )
        polls = session.scalar(
            select(func.count(Poll.id)).join(Issue, Issue.id == Poll.issue_id).where(Issue.community_id == b)
        )
    if stored != len(messages):
        raise RuntimeError(f"{stored} ballots stored in community A, expected {len(messages)}")
    if polls != len(opened):
        raise RuntimeError(f"the opener reported {len(opened)} votes opened, community B has {polls}")
    meanwhile = sum(1 for _, done, _ in opened if began < done <= ended)
    if meanwhile < 1:
        raise RuntimeError("no vote opened in community B while the ballots were timed")
    busy = sum(max(0.0, min(done, ended) - max(start, began)) for start, done, _ in opened)
    ms = sorted(x * 1000 for x in took)
    p50, p99 = statistics.median(ms), ms[math.ceil(0.99 * len(ms)) - 1]  # nearest rank
    opening = statistics.median(done - start for start, done, _ in opened)
    note = (
        f"{len(ms)} ballots in {ended - began:.1f} s; p50 {p50:.1f} ms, max {ms[-1]:.1f} ms; "
        f"{meanwhile} votes for {B_RESIDENTS:,} residents opened meanwhile (confirm step {opening:.2f} s each, "
        f"busy {busy / (ended - began):.0%} of the time"
        + (f", {closed} closed early to reopen" if closed else "")
        + ")"
    )
    return [Result("ballot p99 latency while votes open elsewhere", p99, "ms", 50, False, note)]
