"""Time: 10,000 reminders falling due in one minute, and the committee's digest of a large community."""

from __future__ import annotations

import random
import time
from datetime import timedelta

from sqlalchemy import select

from bench.common import KEY, NOW, Result, fresh_sqlite, register_csv
from flows import digest, due, register, textsense
from storage.models import Account, ActionItem, Comment, DueWork, Issue, Outbox, Person, Scope, Support


def reminders() -> Result:
    db = fresh_sqlite("reminders")
    with db.transaction() as session:
        register.import_file(session, register_csv(buildings=10, rooms=100), NOW)
        people = session.scalars(
            select(Person).where(Person.household_id.is_not(None)).order_by(Person.id)
        ).all()
        session.add_all(
            Account(channel="bench", external_id=str(p.id), person_id=p.id, created_at=NOW) for p in people
        )
        author = people[0]
        issue = Issue(
            community_id=author.community_id, scope_id=author.community_id, author_id=author.id, title="加装电梯",
            details="详情", status="acting", created_at=NOW, support_deadline=NOW,
        )  # fmt: skip
        session.add(issue)
        session.flush()
        due_at = NOW + timedelta(days=1)
        session.execute(
            ActionItem.__table__.insert(),
            [
                {"issue_id": issue.id, "owner_id": people[i % len(people)].id, "creator_id": author.id, "title": f"工单{i}",
                 "due_at": due_at + timedelta(days=1), "progress": 0, "created_at": NOW}
                for i in range(10_000)
            ],
        )  # fmt: skip
        items = session.scalars(select(ActionItem.id)).all()
        session.execute(
            DueWork.__table__.insert(),
            [
                {
                    "key": f"item_due:{i}",
                    "kind": "item_due",
                    "subject_id": i,
                    "due_at": due_at + timedelta(seconds=k % 60),
                }
                for k, i in enumerate(items)
            ],
        )
    start = time.perf_counter()
    won = due.run_due(db, NOW + timedelta(days=1, minutes=1), KEY)
    elapsed = time.perf_counter() - start
    with db.transaction() as session:
        queued = session.scalar(select(Outbox.id).order_by(Outbox.id.desc()).limit(1))
    db.dispose()
    return Result(
        "10,000 reminders due in one minute", elapsed, "s", 10, False, f"{won} claimed, {queued} queued"
    )


def committee_digest() -> Result:
    db = fresh_sqlite("digest")
    rng = random.Random(5)
    textsense.warm_up()
    with db.transaction() as session:
        register.import_file(session, register_csv(buildings=50, rooms=100), NOW)  # 5,000 households
        people = session.scalars(select(Person.id).where(Person.household_id.is_not(None))).all()
        chief = session.scalar(select(Person).where(Person.household_id.is_(None)))
        buildings = session.scalars(select(Scope.id).where(Scope.level == "building")).all()
        words = ["电梯", "停车", "垃圾分类", "漏水", "路灯", "噪音", "绿化", "门禁", "快递柜", "充电桩"]
        session.execute(
            Issue.__table__.insert(),
            [
                {"community_id": chief.community_id, "scope_id": rng.choice(buildings), "author_id": rng.choice(people),
                 "title": f"{rng.choice(words)}问题{i}", "details": f"{rng.choice(words)}和{rng.choice(words)}需要处理",
                 "status": rng.choice(("raised", "discussing", "closed")), "major": False, "keyword_count": 0,
                 "rating_round": 0, "created_at": NOW - timedelta(days=rng.uniform(0, 100)), "support_deadline": NOW}
                for i in range(2_000)
            ],
        )  # fmt: skip
        issues = session.scalars(select(Issue.id)).all()
        session.execute(
            Support.__table__.insert(),
            [
                {"issue_id": i, "person_id": rng.choice(people), "household_id": None, "created_at": NOW}
                for i in issues
            ],
        )
        session.execute(
            Comment.__table__.insert(),
            [
                {"issue_id": rng.choice(issues), "person_id": rng.choice(people), "text": f"{rng.choice(words)}的事情要尽快解决",
                 "created_at": NOW - timedelta(days=rng.uniform(0, 100)), "state": "visible"}
                for _ in range(50_000)
            ],
        )  # fmt: skip
    timings = []
    with db.transaction() as session:
        reader = session.get(Person, chief.id)
        for _ in range(5):
            start = time.perf_counter()
            digest.collect(session, reader, NOW - digest.DAILY, NOW)
            timings.append(time.perf_counter() - start)
    db.dispose()
    return Result(
        "committee digest: 5,000 households",
        sorted(timings)[2],
        "s",
        1,
        False,
        "2,000 issues, 50,000 comments; median of 5",
    )
