"""Similar-issue search among 10,000 open issues: p95 latency."""

from __future__ import annotations

import random
import statistics
import time
from datetime import timedelta

from sqlalchemy import select

from bench.common import NOW, Result, fresh_sqlite, register_csv
from flows import issues as flow
from flows import register, textsense
from storage.models import Issue, IssueKeyword, Person, Scope

PLACES = ["楼道", "电梯", "车棚", "门口", "楼顶", "地下室", "花园", "广场", "单元门", "小路"]
PROBLEMS = [
    "漏水",
    "停运",
    "乱停车",
    "垃圾堆放",
    "噪音",
    "路灯不亮",
    "门禁损坏",
    "绿化枯死",
    "外墙脱落",
    "下水道堵塞",
]


def run() -> Result:
    db = fresh_sqlite("similar")
    rng = random.Random(2)
    with db.transaction() as session:
        register.import_file(session, register_csv(buildings=20, rooms=10), NOW)
        author = session.scalar(select(Person).where(Person.household_id.is_not(None)))
        buildings = session.scalars(select(Scope).where(Scope.level == "building")).all()
        textsense.warm_up()
        for i in range(10_000):
            title = f"{rng.choice(buildings).name}{rng.choice(PLACES)}{rng.choice(PROBLEMS)}{i}"
            details = f"{rng.choice(PLACES)}{rng.choice(PROBLEMS)},{rng.choice(PLACES)}也有类似情况。"
            issue = Issue(
                community_id=author.community_id, scope_id=rng.choice(buildings).id, author_id=author.id, title=title,
                details=details, status="raised", created_at=NOW, support_deadline=NOW + timedelta(days=14),
            )  # fmt: skip
            session.add(issue)
            session.flush()
            session.add_all(
                IssueKeyword(issue_id=issue.id, word=w) for w in textsense.keywords(f"{title} {details}")
            )
            issue.keyword_count = len(textsense.keywords(f"{title} {details}"))
    timings = []
    with db.transaction() as session:
        buildings = session.scalars(select(Scope).where(Scope.level == "building")).all()
        reader = session.scalar(select(Person).where(Person.household_id.is_not(None)).offset(1).limit(1))
        for _ in range(300):
            scope = rng.choice(buildings)
            start = time.perf_counter()
            flow.similar_open(
                session, scope, f"{rng.choice(PLACES)}{rng.choice(PROBLEMS)}", "情况比较严重,请处理。", reader
            )
            timings.append((time.perf_counter() - start) * 1000)
    db.dispose()
    p95 = statistics.quantiles(timings, n=20)[-1]
    return Result(
        "similar search, 10,000 open issues",
        p95,
        "ms p95",
        20,
        False,
        f"median {statistics.median(timings):.1f} ms",
    )
