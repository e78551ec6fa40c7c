"""Button votes under a bound group's vote message: 1,000 residents of one building (a vote a
person) press once, then 200 of them again (100 the same choice: "already recorded"; 100 another:
a change). The fake Bot API and the residents are in a process of their own (bench/tg_fake.py).

`polling()`: SQLite, `yishi telegram`'s long polling with the clock in-process; the crowd presses
at once, as under a message in a busy group, and the 200 once the first presses are all answered.
Votes per second from the first press to the last answer (the times the fake took the answers),
and whether that rate holds: the last quarter of the first presses' answers against the first
quarter. Every vote must be counted once: each voter's ballot as their last press chose, the
poll's tally the sum of them (else the run fails). The vote message is edited at most once a
minute: the run waits for the edit that shows every ballot (due a minute after the message was
posted) and counts the edits of it against the minutes since it was posted.

`webhooks()`: the same on PostgreSQL through `yishi serve` in 1 and then 2 worker processes (each
a subprocess on its own port) beside the deployment's one `yishi clock` (a subprocess too: it
posts the vote messages and edits them); the driver POSTs the presses concurrently, 40 at a time
as Telegram does by default (`max_connections`), spread over the workers in turn, the repeats once
the first presses are all answered. Each worker count votes on a vote of its own (two votes were
opened, and their messages posted, before the servers start). The presses are made in the fake
before the timing, so it is told to take an answer up to 10 minutes after a press instead of
Telegram's 15 s.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench.common import Result, fresh_sqlite
from bench.pg_common import scratch_database
from bench.tg_common import (
    BUILDING,
    GROUP,
    LEADER,
    accounts,
    bind_group,
    config,
    join,
    open_vote,
    person_ids,
    polling_bot,
    populate,
    quiet,
    raise_issue,
    resident_name,
    user_id,
    vote_messages,
    wait,
)
from bench.tg_fake import FakeProcess
from bot.app import App
from flows import votes
from storage.db import Database
from storage.models import Account, Ballot, Poll
from storage.seal import new_key
from tests.fake_telegram import post
from tests.harness import free_port

RESIDENTS = 1000
AGAIN = 200  # of them press again: the first half the same choice, the other half another
MAX_CONNECTIONS = 40  # Telegram's default for a webhook
WORKERS = (1, 2)
SECRET = "bench-webhook-secret"
HELPERS = 12  # residents who join through the bot, raise and support the issues voted on
RECORDED, ALREADY = "投票已记录", "早已记录"
MINUTE = 60.0  # the group's vote message is edited at most once in this many seconds


def _plan(
    poll: int, message_id: int, seed: int
) -> tuple[list[tuple[int, int, str]], list[tuple[int, int, str]], dict[int, int]]:
    """The first presses (everyone, in a random order), the repeats, and each user's final choice."""
    rng = random.Random(seed)
    first = {user_id(n): rng.randint(1, 3) for n in range(RESIDENTS)}
    order = list(first)
    rng.shuffle(order)
    again = rng.sample(order, AGAIN)
    final = dict(first)
    repeats = []
    for k, user in enumerate(again):
        choice = first[user] if k < AGAIN // 2 else first[user] % 3 + 1
        final[user] = choice
        repeats.append((user, message_id, f"v:{poll}:{choice}"))
    return [(u, message_id, f"v:{poll}:{first[u]}") for u in order], repeats, final


def _prepare(app: App, fake: FakeProcess, polls: int) -> list[int]:
    """The building, its leader and a dozen residents joined, the group bound, `polls` issues raised
    and supported into discussion by those, a vote opened on each; then every other resident's account (after
    the votes opened: their notifications are not part of it). The people in the fake."""
    populate(app, RESIDENTS)
    helpers = {user_id(n): resident_name(n) for n in range(HELPERS)}
    join(app, {LEADER: "楼长", **helpers})
    bind_group(app)
    opened = []
    for k in range(polls):
        author = user_id(k)
        issue = raise_issue(app, author, f"加装电梯第{k + 1}期", [u for u in helpers if u != author])
        opened.append(open_vote(app, issue))
    ids = person_ids(app)
    accounts(app, {user_id(n): ids[resident_name(n)] for n in range(HELPERS, RESIDENTS)})
    fake.call("users", [(LEADER, "楼长"), *((user_id(n), resident_name(n)) for n in range(RESIDENTS))])
    members = {LEADER: "administrator", **{user_id(n): "member" for n in range(RESIDENTS)}}
    fake.call("group", GROUP, members, f"{BUILDING}邻里群")
    return opened


def _counted(db: Database, poll: int, final: dict[int, int]) -> str:
    """Every voter's ballot as their last press chose, and the poll's tally (as the core counts it
    for the vote message and the close) the sum of those choices; refuses loudly otherwise. A note
    of what was found."""
    with db.transaction() as session:
        users = dict(session.execute(select(Account.person_id, Account.external_id)).all())
        rows = session.execute(select(Ballot.voter_id, Ballot.choices).where(Ballot.poll_id == poll)).all()
        shown = session.get(Poll, poll)
        assert shown is not None
        turnout, tally = votes.turnout(session, shown), dict(votes.running_votes(session, shown))
    ballots = {int(users[voter]): list(choices) for voter, choices in rows}
    wrong = [u for u, c in final.items() if ballots.get(u) != [c]]
    pressed = dict(Counter(final.values()))
    if len(ballots) != RESIDENTS or wrong or turnout != RESIDENTS or tally != pressed:
        raise RuntimeError(
            f"{len(ballots)} ballots stored, {len(wrong)} not as the last press chose "
            f"(e.g. {wrong[:3]}: {[ballots.get(u) for u in wrong[:3]]} against {[final[u] for u in wrong[:3]]}); "
            f"turnout {turnout}, tally {tally} against {pressed} pressed"
        )
    return f"{len(ballots)} ballots, the tally as pressed, the {AGAIN // 2} changes in it"


def _answers(texts: list[str | None]) -> str:
    kinds = Counter(
        "recorded" if t and RECORDED in t else "already" if t and ALREADY in t else repr((t or "")[:30])
        for t in texts
    )
    return ", ".join(f"{n} {k}" for k, n in kinds.most_common())


def _rates(began: float, first: list[float], again: list[float]) -> tuple[float, float, str]:
    """From the first press and the times each press was answered (the first presses, the repeats):
    votes a second over the run, and the last quarter's rate of the first presses against the
    first quarter's (counted from the first press); a note of both."""
    times = sorted(first)
    n = len(times) // 4
    head = n / (times[n - 1] - began)
    tail = n / (times[-1] - times[-n - 1])
    rate = (len(first) + len(again)) / (max(times[-1], *again) - began)
    return (
        rate,
        tail / head,
        f"{head:.0f} votes/s over the first {n} first presses, {tail:.0f} over the last {n}",
    )


def _edits(fake: FakeProcess, last: dict[int, float]) -> tuple[int, int, str]:
    """Waits for each vote message's edit that shows every ballot, made after the last answer to a
    press on it (`last`, by message id): due a minute after the message was posted or last edited
    (a minute more where the clock's wake-up for it was lost: its safety look edits it). Then the
    edits of those messages, how many one a minute allows since each was posted, and a note.
    Refuses loudly when a message was edited sooner than a minute after it was posted or last
    edited."""

    def final(records: list[tuple[int, int, str, float, str | None]]) -> dict[int, float]:
        """When each message first showed every ballot after the last answer."""
        shown: dict[int, float] = {}
        for _, m, k, t, text in records:
            if m in last and k == "edit" and t > last[m] and f"{RESIDENTS}/" in (text or ""):
                shown.setdefault(m, t)
        return shown

    posted = {m: t for _, m, k, t, _ in fake.call("records") if m in last and k == "text"}
    wait(
        lambda: len(final(fake.call("records"))) == len(last),
        "the vote messages edited with every ballot",
        timeout=max(10.0, max(last.values()) + 2 * MINUTE + 15 - time.monotonic()),
    )
    watched = time.monotonic()
    records = fake.call("records")
    edits, allowed, gaps = 0, 0, []
    for message in last:
        times = [t for _, m, k, t, _ in records if m == message and k == "edit"]
        gaps += [b - a for a, b in zip([posted[message], *times], times, strict=False)]
        edits += len(times)
        allowed += int((watched - posted[message]) // MINUTE)
    if min(gaps) < MINUTE - 0.5:
        raise RuntimeError(f"a vote message was edited sooner than a minute after the last: {gaps}")
    late = max(t - last[m] for m, t in final(records).items())
    return (
        edits,
        allowed,
        (
            f"{edits} edit{'s' if edits != 1 else ''} in the {watched - min(posted.values()):.0f} s since posted, {min(gaps):.1f} s apart at "
            f"least; one a minute allows {allowed}; every ballot shown {late:.0f} s after the last was cast"
        ),
    )


# --- long polling, SQLite --------------------------------------------------------------------


@quiet()
def polling() -> list[Result]:
    db = fresh_sqlite("tg-votes")
    with FakeProcess() as fake:
        cfg = config(db.url, fake.api_url, fake.token, new_key())
        app = App(cfg, db=db)
        (poll,) = _prepare(app, fake, 1)
        bot, _runner = polling_bot(app, cfg)
        bot.start()
        try:
            message_id = vote_messages(fake, [poll], bot.check)[poll]
            first, repeats, final = _plan(poll, message_id, seed=11)
            reports = [fake.call("burst", presses, timeout=180.0) for presses in (first, repeats)]
            bot.check()
            unanswered = sum(r["unanswered"] for r in reports)
            if unanswered:
                raise RuntimeError(f"{unanswered} of {len(first) + len(repeats)} presses never answered")
            last = max(answered for r in reports for _, answered, _, _ in r["presses"])
            edits, allowed, edited = _edits(fake, {message_id: last})
        finally:
            bot.close()
        counted = _counted(db, poll, final)
    db.dispose()

    presses = [p for r in reports for p in r["presses"]]
    rate, flat, how = _rates(
        reports[0]["presses"][0][0],
        [answered for _, answered, _, _ in reports[0]["presses"]],
        [answered for _, answered, _, _ in reports[1]["presses"]],
    )
    late = sum(not ok for _, _, ok, _ in presses)
    note = (
        f"{RESIDENTS:,} presses at once, then {AGAIN} again; {counted}; answers: "
        f"{_answers([text for _, _, _, text in presses])}"
        + (f"; {late} answered too late (query too old)" if late else "")
    )
    return [
        Result("TG button votes, polling, SQLite", rate, "votes/s", 100, True, note),
        Result("TG button votes, polling: flat", flat, "ratio", 0.8, True, f"last quarter / first: {how}"),
        Result("TG vote message edits, polling", edits, "edits", allowed, False, edited),
    ]  # fmt: skip


# --- webhooks, PostgreSQL, `yishi serve` workers ------------------------------------------------


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _healthy(port: int) -> bool:
    try:
        with _OPENER.open(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return int(answer.status) == 200
    except OSError:
        return False


class _Yishi:
    """A `yishi` command in a subprocess, its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], folder: Path) -> None:
        self.log = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115
        yishi = str(Path(sys.executable).with_name("yishi"))
        self.proc = subprocess.Popen(
            [yishi, *args], env=env, cwd=folder, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.args = args

    def check(self) -> None:
        if self.proc.poll() is not None:
            self.log.seek(0)
            raise RuntimeError(
                f"yishi {self.args[0]} exited with {self.proc.returncode}: {self.log.read().decode()[-2000:]}"
            )

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@contextlib.contextmanager
def _running(commands: list[list[str]], env: dict[str, str], folder: Path) -> Iterator[list[_Yishi]]:
    started: list[_Yishi] = []
    try:
        for args in commands:
            started.append(_Yishi(args, env, folder))
        yield started
    finally:
        for one in started:
            one.stop()


@contextlib.contextmanager
def _servers(count: int, env: dict[str, str], folder: Path) -> Iterator[list[str]]:
    """`yishi serve` × count, each on a port of its own; their webhook URLs once healthy."""
    ports = [free_port() for _ in range(count)]
    commands = [["serve", "--host", "127.0.0.1", "--port", str(port)] for port in ports]
    with _running(commands, env, folder) as servers:
        for server, port in zip(servers, ports, strict=True):
            wait(lambda s=server, p=port: s.check() or _healthy(p), f"yishi serve on port {port}")
        yield [f"http://127.0.0.1:{port}/telegram" for port in ports]


def _drive(urls: list[str], batches: list[list[dict[str, Any]]]) -> tuple[float, list[int]]:
    """POST each batch's updates, MAX_CONNECTIONS at a time over the workers in turn, a batch once
    the one before is all answered; when it began, and the statuses."""
    statuses: list[int] = []
    with ThreadPoolExecutor(MAX_CONNECTIONS) as pool:
        began = time.monotonic()
        for batch in batches:
            jobs = [pool.submit(post, urls[i % len(urls)], update, SECRET) for i, update in enumerate(batch)]
            statuses += [job.result() for job in jobs]
    return began, statuses


@quiet()
def webhooks() -> list[Result] | None:
    with scratch_database("telegram") as db:
        if db is None:
            return None
        return _webhooks(db)


def _webhooks(db: Database) -> list[Result]:
    key = new_key()
    with FakeProcess() as fake, tempfile.TemporaryDirectory(prefix="yishi-serve-") as folder:
        cfg = config(db.url, fake.api_url, fake.token, key)
        polls = _prepare(App(cfg, db=db), fake, len(WORKERS))
        db.dispose()
        fake.call("set", callback_timeout=600.0)
        env = dict(
            os.environ, DATABASE_URL=db.url, TELEGRAM_TOKEN=fake.token, TELEGRAM_API_URL=fake.api_url,
            TELEGRAM_WEBHOOK_SECRET=SECRET, YISHI_BALLOT_KEY=key, PYTHONUNBUFFERED="1",
        )  # fmt: skip
        results, rates, last = [], {}, {}
        # the deployment's one `yishi clock`: it posts the vote messages and keeps them current
        with _running([["clock"]], env, Path(folder)) as (clock,):
            messages = vote_messages(fake, polls, clock.check)
            for workers, poll in zip(WORKERS, polls, strict=True):
                first, repeats, final = _plan(poll, messages[poll], seed=20 + workers)
                batches = [fake.call("held_presses", first), fake.call("held_presses", repeats)]
                with _servers(workers, env, Path(folder)) as urls:
                    began, statuses = _drive(urls, batches)
                bad = Counter(s for s in statuses if s != 200)
                if bad:
                    raise RuntimeError(
                        f"the webhook answered {dict(bad)} to {sum(bad.values())} of {len(statuses)}"
                    )
                answers = [
                    fake.call("answers", [u["callback_query"]["id"] for u in batch]) for batch in batches
                ]
                missing = sum(a is None or not a[1] for batch in answers for a in batch)
                if missing:
                    raise RuntimeError(f"{missing} of {len(statuses)} presses not answered")
                counted = _counted(db, poll, final)
                rate, flat, how = _rates(began, *([a[0] for a in batch] for batch in answers))
                last[messages[poll]] = max(a[0] for batch in answers for a in batch)
                rates[workers] = rate
                name = f"TG webhook votes, PG, {workers} worker{'s' if workers > 1 else ''}"
                texts = [a[2] for batch in answers for a in batch]
                results += [
                    Result(name, rate, "votes/s", 100, True,
                           f"{len(statuses):,} POSTs, {MAX_CONNECTIONS} at a time; {counted}; answers: {_answers(texts)}"
                           + (f"; {rate / rates[1]:.2f}× 1 worker's" if workers > 1 else "")),
                    Result(f"{name}: flat", flat, "ratio", 0.8, True, f"last quarter / first: {how}"),
                ]  # fmt: skip
            edits, allowed, edited = _edits(fake, last)
            clock.check()
        results.append(
            Result("TG vote message edits, webhooks", edits, "edits", allowed, False,
                   f"both votes' messages, edited by `yishi clock`: {edited}")
        )  # fmt: skip
    return results
