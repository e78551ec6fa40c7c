"""The public board under load: a community of 2,000 issues and 50,000 comments, served by real
`yishi serve` processes, on SQLite and on PostgreSQL.

- Latency, warm: the board's first page and an issue's page (the one with the most comments,
  1,000), each asked 200 times in turn over one kept-alive connection: p50 and p95, target p95
  ≤ 100 ms.
- Throughput: `wrk` (Debian's package: `make bench` installs it where it can) with 8 connections
  for 8 s on the board's first page, against one worker and against two (one `wrk` a worker,
  as a load balancer would spread them): requests a second, all answered 200.

The record is written straight into the tables (the flows would take minutes for 50,000
comments): statuses spread over every stage, supports, votes with their results, tasks with
progress reports, ratings, transitions.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert, select, text

from bench.common import NOW, Result, fresh_sqlite, register_csv
from bench.pg_common import scratch_database
from bench.tg_votes import _healthy, _running
from flows import register
from storage.db import Database
from storage.models import (
    ActionItem,
    Comment,
    Household,
    Issue,
    ItemUpdate,
    Person,
    Poll,
    PollOption,
    Rating,
    Scope,
    Support,
    Transition,
)
from storage.seal import new_key
from tests.harness import free_port

ISSUES, COMMENTS, HOT = 2000, 50_000, 1000  # HOT: the comments of the busiest issue
ASKED, WARM = 200, 20
TARGET_MS = 100.0
WRK_SECONDS, WRK_CONNECTIONS = 8, 8
PATHS = ("passed", "acting")  # how a decided issue went on
STATUSES = (
    ["raised"] * 6
    + ["discussing"] * 3
    + ["voting"] * 2
    + ["acting"] * 3
    + ["closed"] * 3
    + ["rejected"] * 2
    + ["expired"]
)


def _history(status: str) -> list[str]:
    before = {"raised": [], "discussing": ["raised"], "voting": ["raised", "discussing"]}
    if status in before:
        return [*before[status], status]
    if status == "expired":
        return ["raised", "expired"]
    if status == "rejected":
        return ["raised", "discussing", "voting", "rejected"]
    if status == "acting":
        return ["raised", "discussing", "voting", "passed", "acting"]
    return ["raised", "discussing", "voting", "passed", "acting", "done", "closed"]


def populate(db: Database) -> int:
    """The community and its record; the id of the busiest issue."""
    rng = random.Random(13)
    with db.transaction() as session:
        register.import_file(session, register_csv(buildings=20, rooms=50), NOW - timedelta(days=400))
    with db.transaction() as session:
        community = session.scalar(select(Scope.id).where(Scope.level == "community"))
        scopes = session.scalars(select(Scope.id).where(Scope.level != "community")).all()
        people = session.execute(
            select(Person.id, Person.household_id).where(Person.household_id.is_not(None))
        ).all()
        staff = session.scalar(select(Person.id).where(Person.household_id.is_(None)))
        households = session.scalar(select(Household.id).order_by(Household.id.desc()))
    assert community is not None and staff is not None and households is not None
    rows: dict[type, list[dict]] = {t: [] for t in (Issue, Transition, Support, Comment, Poll, Rating)}
    items: list[tuple[int, int, bool]] = []  # issue, its number among items, done
    start = NOW - timedelta(days=365)
    for n in range(1, ISSUES + 1):
        status = STATUSES[n % len(STATUSES)]
        at = start + timedelta(hours=4 * n)
        author = people[rng.randrange(len(people))]
        rows[Issue].append(
            {"id": n, "community_id": community, "scope_id": rng.choice(scopes), "author_id": author[0],
             "title": f"议题{n}:楼道灯坏了很久,晚上出入不便", "details": "详情" * 40, "status": status,
             "major": n % 17 == 0, "category": None, "created_at": at, "support_deadline": at + timedelta(days=14),
             "keyword_count": 0, "rating_round": 1 if status == "closed" else 0,
             "done_at": at + timedelta(days=30) if status == "closed" else None}
        )  # fmt: skip
        for k, step in enumerate(_history(status)):
            rows[Transition].append({"issue_id": n, "status": step, "at": at + timedelta(days=k)})
        for person, household in rng.sample(people, rng.randrange(1, 8)):
            rows[Support].append(
                {"issue_id": n, "person_id": person, "household_id": household, "created_at": at}
            )
        if status in ("voting", "acting", "closed", "rejected"):
            closed = status != "voting"
            rows[Poll].append(
                {"id": n, "issue_id": n, "scope_id": community, "opener_id": staff, "kind": "approve", "max_choices": 1,
                 "unit": "household", "secret": n % 5 == 0, "major": n % 17 == 0,
                 "rules": {"quorum": ">1/2", "pass": ">1/2", "major_quorum": ">=2/3", "major_pass": ">=2/3"},
                 "opens_at": at + timedelta(days=2), "closes_at": at + timedelta(days=9),
                 "closed_at": at + timedelta(days=9) if closed else None, "eligible": households,
                 "turnout": 600 if closed else None, "quorum_met": True if closed else None,
                 "outcome": ("rejected" if status == "rejected" else "passed") if closed else None}
            )  # fmt: skip
        if status in ("acting", "closed"):
            items.append((n, len(items) + 1, status == "closed"))
        if status == "closed":
            for person, _ in rng.sample(people, 3):
                rows[Rating].append({"issue_id": n, "round": 1, "person_id": person, "score": rng.randint(3, 5),
                                     "why": None, "at": at + timedelta(days=31)})  # fmt: skip
    hot = next(n for n in range(ISSUES, 0, -1) if STATUSES[n % len(STATUSES)] == "acting")
    texts = ("同意,尽快修", "我们楼也一样", "建议先统计一下", "物业说下周来", "晚上确实很黑")
    counts = [HOT if n == hot else 0 for n in range(1, ISSUES + 1)]
    for _ in range(COMMENTS - HOT):
        counts[rng.randrange(ISSUES)] += 1
    for n, count in enumerate(counts, start=1):
        for c in range(count):
            rows[Comment].append({"issue_id": n, "person_id": people[(n + c) % len(people)][0],
                                  "text": texts[c % len(texts)], "created_at": start + timedelta(hours=4 * n, minutes=c),
                                  "state": "visible"})  # fmt: skip
    options = [
        {"poll_id": p["id"], "number": k, "label": label, "votes": 0 if p["closed_at"] is None else v, "adopted": k == 1}
        for p in rows[Poll] for k, (label, v) in enumerate((("同意", 400), ("反对", 150), ("弃权", 50)), start=1)
    ]  # fmt: skip
    item_rows = [
        {"id": k, "issue_id": n, "owner_id": staff, "creator_id": staff, "title": "联系物业更换灯具",
         "due_at": NOW + timedelta(days=10), "progress": 100 if done else 40, "created_at": NOW - timedelta(days=20),
         "done_at": NOW - timedelta(days=2) if done else None}
        for n, k, done in items
    ]  # fmt: skip
    updates = [
        {"item_id": k, "person_id": staff, "progress": p, "text": "已联系物业", "at": NOW - timedelta(days=10 - p // 20)}
        for _, k, _ in items for p in (20, 40)
    ]  # fmt: skip
    with db.transaction() as session:
        for table in (Issue, Transition, Support, Poll, Rating):
            session.execute(insert(table), rows[table])
        session.execute(insert(PollOption), options)
        session.execute(insert(ActionItem), item_rows)
        session.execute(insert(ItemUpdate), updates)
        for chunk in range(0, len(rows[Comment]), 10_000):
            session.execute(insert(Comment), rows[Comment][chunk : chunk + 10_000])
    if db.engine.dialect.name == "postgresql":  # the ids were given: the sequences move past them
        with db.transaction() as session:
            for table in ("issues", "polls", "action_items"):
                session.execute(text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))"))
            session.execute(text("ANALYZE"))
    return hot


@contextmanager
def _workers(db: Database, count: int) -> Iterator[list[str]]:
    """`yishi serve` × count on the database; their addresses once healthy."""
    folder = Path(tempfile.mkdtemp(prefix="yishi-bench-board-"))
    env = dict(os.environ, DATABASE_URL=db.url, YISHI_BALLOT_KEY=new_key())  # the board opens no tally
    ports = [free_port() for _ in range(count)]
    commands = [["serve", "--host", "127.0.0.1", "--port", str(port)] for port in ports]
    try:
        with _running(commands, env, folder) as servers:
            for server, port in zip(servers, ports, strict=True):
                deadline = time.monotonic() + 60
                while not _healthy(port):
                    server.check()
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"yishi serve on port {port} did not become healthy")
                    time.sleep(0.1)
            yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _latency(base: str, path: str) -> tuple[float, float]:
    """p50 and p95 in milliseconds of ASKED requests in turn, after WARM to warm up."""
    times = []
    with httpx.Client(base_url=base, timeout=30, headers={"Accept-Language": "zh-CN"}) as client:
        for k in range(WARM + ASKED):
            began = time.perf_counter()
            answer = client.get(path)
            elapsed = time.perf_counter() - began
            if answer.status_code != 200:
                raise RuntimeError(f"{path}: {answer.status_code}")
            if k >= WARM:
                times.append(elapsed * 1000)
    return statistics.median(times), statistics.quantiles(times, n=20)[18]


def _wrk(urls: list[str]) -> tuple[float, str]:
    """Requests a second of one `wrk` a worker, at once; and what went wrong, if anything."""
    with ExitStack() as stack:
        runs = [
            stack.enter_context(
                subprocess.Popen(
                    [
                        "wrk",
                        "-t1",
                        f"-c{WRK_CONNECTIONS}",
                        f"-d{WRK_SECONDS}s",
                        "-H",
                        "Accept-Language: zh-CN",
                        url,
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
            for url in urls
        ]
        outputs = [run.communicate(timeout=WRK_SECONDS + 60)[0] for run in runs]
    rate, problems = 0.0, []
    for out in outputs:
        found = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if found is None:
            raise RuntimeError(f"wrk said: {out[-500:]}")
        rate += float(found.group(1))
        problems += re.findall(r"(Non-2xx or 3xx responses: \d+|Socket errors: .*)", out)
    return rate, "; ".join(problems)


def _measure(db: Database, where: str) -> list[Result]:
    hot = populate(db)
    results = []
    with _workers(db, 2) as bases:
        for name, path in (
            ("first page", "/c/1"),
            (f"issue #{hot} ({HOT} comments)", f"/c/1/issues/{hot}"),
        ):
            p50, p95 = _latency(bases[0], path)
            results.append(
                Result(f"board: {name} p95, {where}", p95, "ms", TARGET_MS, False, f"p50 {p50:.1f} ms; {ASKED} in turn, warm; {ISSUES} issues, {COMMENTS} comments")
            )  # fmt: skip
        if shutil.which("wrk") is None:
            return results
        for count in (1, 2):
            rate, problems = _wrk([base + "/c/1" for base in bases[:count]])
            if problems:
                raise RuntimeError(f"the board did not answer every request: {problems}")
            results.append(
                Result(f"board: first page, {where}, {count} worker{'s' if count > 1 else ''}", rate, "req/s", None, True,
                       f"wrk, {WRK_CONNECTIONS} connections a worker for {WRK_SECONDS} s, every answer 200")
            )  # fmt: skip
    return results


def sqlite() -> list[Result]:
    db = fresh_sqlite("board")
    try:
        return _measure(db, "SQLite")
    finally:
        db.dispose()


def postgres() -> list[Result] | None:
    with scratch_database("board") as db:
        if db is None:
            return None
        return _measure(db, "PostgreSQL")
