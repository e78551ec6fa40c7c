"""WeChat: from a callback to its passive answer, under 50 residents writing at once, through real
`yishi serve` processes against the fake WeChat API (tests/fake_wechat.py): one worker on SQLite,
two on PostgreSQL (residents spread over them, as a load balancer would). Each resident sends a
mix of what residents send (`议题`, `查看 1`, `评论 2 …`, `我的`), as WeChat relays them; every
answer must be passive (no `success`: a late one would show as that).

Two loads: residents as people write, each pausing about a second (0.5–1.5 s) between messages
(about 50 messages a second in all): p50 and p95 of the time to the answer, target ≤ 100 ms; and
the same 50 without a pause, each sending the next message the moment an answer comes: the most
answers a second, and the time to an answer then (which is 50 ÷ that rate, by Little's law).
"""

from __future__ import annotations

import itertools
import random
import statistics
import sys
import threading
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlencode

from sqlalchemy import select

from bench.common import NOW, Result, fresh_sqlite
from bench.pg_common import scratch_database
from flows import register
from flows.clock import FixedClock
from flows.messages import Incoming
from handlers.dispatch import Dispatcher
from storage.db import Database
from storage.models import Invite, Person
from storage.seal import BallotKey
from tests.fake_wechat import FakeWeChat, read_reply, running, signed, xml
from tests.harness import BALLOT_KEY
from tests.test_wechat import worker

RESIDENTS = 50
MESSAGES = 20  # each
TARGET_MS = 100.0
YISHI = str(Path(sys.executable).with_name("yishi"))
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_MSG_IDS = itertools.count(1)  # each message its own MsgId (a repeat would be answered `success`)


def _register() -> bytes:
    lines = ["community,area,grid,building,room,name,role"]
    lines += [f"基准社区,东片区,东一网格,1栋,{100 + n},居民{n},resident" for n in range(RESIDENTS)]
    return ("\n".join(lines) + "\n").encode()


def _prepare(db: Database) -> None:
    """The register, each resident joined on WeChat, and an issue with comments to look at."""
    with db.transaction() as session:
        register.import_file(session, _register(), NOW)
    dispatcher = Dispatcher(db, FixedClock(NOW), BallotKey(BALLOT_KEY))
    with db.transaction() as session:
        codes = dict(
            session.execute(
                select(Person.name, Invite.code).join(Invite, Invite.person_id == Person.id)
            ).all()
        )
    for n in range(RESIDENTS):
        dispatcher.handle(Incoming("wechat", f"o{n}", f"o{n}", text=f"/join {codes[f'居民{n}']}"))
    for title in ("楼道灯坏了", "电梯经常停运"):  # #1 is looked at, #2 commented on
        for line in ("/raise", title, "三楼到六楼都是这样。", "1", "1"):
            dispatcher.handle(Incoming("wechat", "o0", "o0", text=line))
    for n in range(10):
        dispatcher.handle(Incoming("wechat", f"o{n}", f"o{n}", text=f"/comment 1 第{n}条意见"))


def _resident(
    n: int, urls: list[str], fake: FakeWeChat, timings: list[float], late: list[int], pause: float
) -> None:
    rng = random.Random(n)
    openid, url = f"o{n}", urls[n % len(urls)]
    for k in range(MESSAGES):
        if pause:
            time.sleep(rng.uniform(0.5 * pause, 1.5 * pause))
        text = rng.choice(["议题", "查看 1", f"评论 2 第{n}-{k}条补充", "我的"])
        fake.interacted(openid, "message")
        query, body = signed(xml(openid, "text", int(time.time()), next(_MSG_IDS), Content=text))
        request = urllib.request.Request(
            f"{url}/wechat?{urlencode(query)}", body, {"Content-Type": "text/xml"}
        )
        started = time.perf_counter()
        with _OPENER.open(request, timeout=30) as answer:
            data = answer.read()
        timings.append(time.perf_counter() - started)
        if not read_reply(data):
            late.append(1)


class Load(NamedTuple):
    p50: float  # ms
    p95: float
    rate: float  # answers a second
    late: int  # answered `success`, not passively


def _load(urls: list[str], fake: FakeWeChat, pause: float) -> Load:
    timings: list[float] = []
    late: list[int] = []
    threads = [
        threading.Thread(target=_resident, args=(n, urls, fake, timings, late, pause))
        for n in range(RESIDENTS)
    ]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    ms = sorted(1000 * t for t in timings)
    return Load(statistics.median(ms), ms[int(0.95 * (len(ms) - 1))], len(ms) / elapsed, len(late))


def _measure(db: Database, workers: int, where: str) -> list[Result]:
    _prepare(db)
    with running(FakeWeChat()) as fake, ExitStack() as stack:
        urls = [stack.enter_context(worker(db, fake)) for _ in range(workers)]
        people = _load(urls, fake, pause=1.0)
        flat_out = _load(urls, fake, pause=0.0)
    about = f"{RESIDENTS} residents × {MESSAGES}"
    return [
        Result(f"wechat {where}: answer p50", people.p50, "ms", TARGET_MS, False, f"{about}, ~1 s apart"),
        Result(f"wechat {where}: answer p95", people.p95, "ms", TARGET_MS, False, f"late: {people.late}"),
        Result(f"wechat {where}: answers", people.rate, "/s", None, True, "as offered"),
        Result(f"wechat {where}: most answers", flat_out.rate, "/s", None, True, f"{about}, no pause"),
        Result(
            f"wechat {where}: p95 at the most", flat_out.p95, "ms", None, False,
            f"p50 {flat_out.p50:.0f} ms; late: {flat_out.late}",
        ),
    ]  # fmt: skip


def sqlite() -> list[Result]:
    return _measure(fresh_sqlite("wechat"), 1, "SQLite, 1 worker")


def postgres() -> list[Result] | None:
    with scratch_database("wechat") as db:
        if db is None:
            return None
        return _measure(db, 2, "PostgreSQL, 2 workers")
