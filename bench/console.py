"""`yishi console` from outside: 5,000 script lines of /as, /support and /comment from 480 residents.

The console runs as a user runs it, a process reading a script on stdin; its speed is read
from the replies to marker lines (an unknown command, `/markN`) sent after every 1,000 lines.
"""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from bench.common import Result, fresh_sqlite, register_csv
from bench.dispatcher import TOPICS
from flows import register
from flows.clock import FixedClock
from flows.messages import Incoming
from handlers.dispatch import Dispatcher
from storage.db import Database
from storage.models import Account, Comment, Household, Issue, Person, Support
from storage.seal import BallotKey, new_key

LINES = 5000
BLOCK = 1000
ISSUES = 40  # half of them for the whole community, half for one building each
COMMENTS = ["同意,建议尽快处理", "我家也遇到了", "支持!", "希望居委会尽快回复", "这个问题确实存在"]


def _setup(db: Database, key: BallotKey) -> tuple[list[str], dict[str, list[int]]]:
    """The register and the issues; returns the residents' names and the issues each may back."""
    now = datetime.now(UTC)  # the console's own clock is the system's
    with db.transaction() as session:
        register.import_file(session, register_csv(buildings=8, rooms=60), now)
        people = session.scalars(select(Person).where(Person.household_id.is_not(None))).all()
        for p in people:
            # each resident's console account (as `/as NAME` binds it): what the bot says to them is
            # printed from the first line on, so every block of the script does the same work
            session.add(
                Account(channel="console", external_id=f"person:{p.id}", person_id=p.id, created_at=now)
            )
        building = {p.id: session.get(Household, p.household_id).building_id for p in people}  # type: ignore[union-attr]
        names = {p.id: p.name for p in people}
    assert len(names) == 480, len(names)
    rng = random.Random(2)
    dispatcher = Dispatcher(db, FixedClock(now), key)
    for i, who in enumerate(rng.sample(sorted(names), ISSUES)):
        topic = rng.choice(TOPICS)
        scope = "4" if i % 2 else "1"  # the last choice is the community, the first the raiser's building
        for text in ("/raise", f"{topic}问题第{i}次反映", f"{topic},影响居民生活。", scope, "yes"):
            dispatcher.handle(Incoming("console", f"person:{who}", "console", text=text))
    with db.transaction() as session:
        issues = session.execute(select(Issue.id, Issue.scope_id, Issue.community_id)).all()
        community = {row.scope_id for row in issues if row.scope_id not in building.values()}
    assert len(issues) == ISSUES and len(community) == 1, (len(issues), community)
    open_to = {
        names[pid]: [row.id for row in issues if row.scope_id in community or row.scope_id == home]
        for pid, home in building.items()
    }
    return sorted(open_to), open_to


def _script(names: list[str], open_to: dict[str, list[int]]) -> tuple[list[str], int]:
    """LINES lines: a resident speaks with `/as`, then 1–3 supports or comments; and the number of
    support and comment lines among them."""
    rng = random.Random(1)
    lines: list[str] = []
    while len(lines) < LINES:
        name = rng.choice(names)
        lines.append(f"/as {name}")
        for _ in range(rng.randint(1, 3)):
            issue = rng.choice(open_to[name])
            if rng.random() < 0.55:
                lines.append(f"/support {issue}")
            else:
                lines.append(f"/comment {issue} {rng.choice(COMMENTS)}")
    lines = lines[:LINES]
    return lines, sum(not line.startswith("/as ") for line in lines)


def run() -> list[Result]:
    db = fresh_sqlite("console")
    key_text = new_key()
    names, open_to = _setup(db, BallotKey(key_text))
    with db.transaction() as session:
        supports_before = session.scalar(select(func.count(Support.id))) or 0
        comments_before = session.scalar(select(func.count(Comment.id))) or 0
    url = db.url
    db.dispose()
    lines, actions = _script(names, open_to)
    markers = [f"/mark{k}" for k in range(1, LINES // BLOCK + 1)]
    script: list[str] = []
    for k, marker in enumerate(markers):
        script += [*lines[k * BLOCK : (k + 1) * BLOCK], marker]
    data = ("\n".join(script) + "\n").encode()

    env = dict(os.environ, DATABASE_URL=url, YISHI_BALLOT_KEY=key_text, PYTHONUNBUFFERED="1")
    start, seen, output = _drive(env, data, markers)
    refused = _refusals(output)

    db = Database(url)
    with db.transaction() as session:
        supported = (session.scalar(select(func.count(Support.id))) or 0) - supports_before
        commented = (session.scalar(select(func.count(Comment.id))) or 0) - comments_before
    db.dispose()
    accepted = supported + commented
    assert accepted >= actions / 2, f"only {accepted} of {actions} supports and comments were accepted"

    speeds = [BLOCK / (b - a) for a, b in itertools.pairwise([start, *seen])]
    blocks = ", ".join(f"{s:.0f}" for s in speeds)
    return [
        Result(
            "console from outside, 480 residents",
            LINES / (seen[-1] - start),
            "msg/s",
            500,
            True,
            f"{LINES:,} lines of /as, /support, /comment; {accepted} of {actions} accepted "
            f"({supported} supports, {commented} comments){refused}",
        ),
        Result(
            "console: last 1,000 lines vs first 1,000",
            speeds[-1] / speeds[0],
            "ratio",
            0.8,
            True,
            f"msg/s by block of 1,000: {blocks}",
        ),
    ]


def mix(db: Database, key: BallotKey) -> list[Incoming]:
    """The register, the issues, and the script's lines minus `/as`, each from its resident's account."""
    names, open_to = _setup(db, key)
    with db.transaction() as session:
        ids = dict(session.execute(select(Person.name, Person.id).where(Person.name.in_(names))).all())
    lines, _ = _script(names, open_to)
    messages, who = [], ""
    for line in lines:
        if line.startswith("/as "):
            who = f"person:{ids[line[4:]]}"
        else:
            messages.append(Incoming("console", who, "console", text=line))
    return messages


def dispatcher_alone() -> Result:
    """The same lines, minus `/as`, straight to the dispatcher from each resident's account: the
    core without the console's process, pipes and printing."""
    db = fresh_sqlite("dispatcher-mix")
    key = BallotKey(new_key())
    messages = mix(db, key)
    dispatcher = Dispatcher(db, FixedClock(datetime.now(UTC)), key)
    start = time.perf_counter()
    for message in messages:
        dispatcher.handle(message)
    elapsed = time.perf_counter() - start
    db.dispose()
    return Result(
        "dispatcher alone, the console's mix", len(messages) / elapsed, "msg/s", 1000, True,
        f"{len(messages):,} supports and comments from 480 residents, SQLite",
    )  # fmt: skip


def _drive(env: dict[str, str], data: bytes, markers: list[str]) -> tuple[float, list[float], list[str]]:
    """Run the console on the script: when its first line was written, when each marker was
    answered, and everything it printed after the banner."""
    yishi = str(Path(sys.executable).with_name("yishi"))
    with (
        tempfile.TemporaryDirectory(prefix="yishi-console-") as cwd,
        open(Path(cwd) / "stderr.txt", "w+b") as stderr,
    ):
        proc = subprocess.Popen(
            [yishi, "console"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env, cwd=cwd
        )
        stdin, stdout = proc.stdin, proc.stdout
        assert stdin is not None and stdout is not None
        stdout.readline()  # the banner: the console is ready for its first line

        def write() -> None:
            stdin.write(data)
            stdin.close()

        writer = threading.Thread(target=write, daemon=True)  # a full pipe never blocks the reader
        start = time.perf_counter()
        writer.start()
        seen: list[float] = []
        output: list[str] = []
        for raw in stdout:
            if len(seen) < len(markers) and markers[len(seen)].encode() in raw:
                seen.append(time.perf_counter())
            output.append(raw.decode(errors="replace").rstrip("\n"))
        code = proc.wait()
        writer.join()
        stderr.seek(0)
        errors = stderr.read().decode(errors="replace")[-2000:]
    assert code == 0, f"yishi console exited with {code}: {errors}"
    assert len(seen) == len(markers), f"{len(seen)} of {len(markers)} markers answered: {errors}"
    return start, seen, output


def _refusals(output: list[str]) -> str:
    """The commonest refusals among the replies, for the note (the console's language: zh_CN or en)."""
    kinds = (
        "已附议过",
        "already support",
        "仅该范围内的居民",
        "only its residents",
        "不存在议题",
        "There is no issue",
    )
    found = {k: sum(k in line for line in output) for k in kinds}
    shown = ", ".join(f"{n}× {k!r}" for k, n in found.items() if n)
    return f"; refused: {shown}" if shown else ""
