"""Dispatcher throughput: raise dialogs, supports and comments from 500 residents on SQLite."""

from __future__ import annotations

import random
import time

from sqlalchemy import select

from bench.common import KEY, NOW, Result, fresh_sqlite, register_csv
from flows import register
from flows.clock import FixedClock
from flows.messages import Incoming
from handlers.dispatch import Dispatcher
from storage.models import Account, Person

TOPICS = [
    "电梯停运",
    "停车难",
    "垃圾分类",
    "楼道漏水",
    "路灯不亮",
    "噪音扰民",
    "绿化缺失",
    "门禁损坏",
    "快递柜太少",
    "健身器材坏了",
]


def run() -> Result:
    db = fresh_sqlite("dispatcher")
    with db.transaction() as session:
        register.import_file(session, register_csv(buildings=10, rooms=50), NOW)
        people = session.scalars(select(Person).where(Person.household_id.is_not(None))).all()
        for p in people:
            session.add(Account(channel="bench", external_id=str(p.id), person_id=p.id, created_at=NOW))
        residents = [str(p.id) for p in people]
    assert len(residents) == 500
    rng = random.Random(1)
    dispatcher = Dispatcher(db, FixedClock(NOW), KEY)
    messages: list[tuple[str, str]] = []
    for i, who in enumerate(rng.sample(residents, 100)):  # 100 raise dialogs, 5 messages each
        topic = rng.choice(TOPICS)
        messages += [
            (who, "/raise"),
            (who, f"{topic}问题第{i}次反映"),
            (who, f"{topic},影响居民生活。"),
            (who, "1"),
            (who, "yes"),
        ]
    # a warm-up so that the issues exist; then the measured mix
    for who, text in messages:
        dispatcher.handle(Incoming("bench", who, who, text=text))
    mix: list[tuple[str, str]] = []
    for _ in range(1500):
        who = rng.choice(residents)
        kind = rng.random()
        issue = rng.randint(1, 100)
        if kind < 0.45:
            mix.append((who, f"/support {issue}"))
        elif kind < 0.9:
            mix.append((who, f"/comment {issue} 同意,建议尽快处理"))
        else:
            topic = rng.choice(TOPICS)
            mix += [(who, "/raise"), (who, f"{topic}又出现了"), (who, "详情同上。"), (who, "1"), (who, "yes")]
    start = time.perf_counter()
    for who, text in mix:
        dispatcher.handle(Incoming("bench", who, who, text=text))
    elapsed = time.perf_counter() - start
    db.dispose()
    return Result(
        "dispatcher, SQLite, 500 residents",
        len(mix) / elapsed,
        "msg/s",
        1000,
        True,
        f"{len(mix)} messages: raise dialogs, supports, comments",
    )
