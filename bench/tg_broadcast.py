"""A broadcast on Telegram: 3,000 private notifications through a fake Bot API that refuses more
than 30 messages a second (429, retry after 1 s), as Telegram does; and 1,500 while 20 bound
groups have messages waiting.

The notifications are outbox rows written through the core (`outbox.notify_all`, as a vote
opened for everyone does; `outbox.notify_group` for the groups) for residents with a Telegram
account each, and the real sender delivers them: the wake-up of `yishi clock` / `yishi telegram`
(`bot.scheduler.Wakeup`, its scheduler, the real clock) with the Telegram channel's bot, rate
limited by `AIORateLimiter`. The fake runs in a process of its own (bench/tg_fake.py).

- Alone: the sustained rate from the first message to the last should be at least 90% of the
  limit (27/s), and each resident gets theirs exactly once.
- With groups: each group has 30 messages waiting, queued before the broadcast, of ~2,100
  characters each (two never fit in one message, so each goes alone: a busy group). A group may
  take 20 a minute, about 7/s for the 20 together; private messages should still flow at 20/s or
  more, counted from the first message of the run to the last private one. The groups' rate over
  the same span is shown too.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from sqlalchemy import select

from bench.common import Result, fresh_sqlite, register_csv
from bench.tg_common import BotThread, accounts, config, quiet, unsent, wait
from bench.tg_fake import FakeProcess
from bot.app import App
from bot.channels.telegram.sender import TelegramChannel
from bot.scheduler import Wakeup
from flows import outbox, register, settings
from storage.models import Group, Household, Person, Scope
from storage.seal import new_key

LIMIT = 30  # messages a second, as Telegram allows a bot
ALONE = 3000
WITH_GROUPS = 1500
GROUPS = 20
PER_GROUP = 30
FIRST = 100_000  # the Telegram user id of the resident with person id n is FIRST + n
GROUP_BASE = -2_000_000_000_000  # a supergroup's id is -100…
NOTICE = (
    "A vote has opened on issue #{id} {title}; it closes at {closes}. /issue {id} shows the choices, "
    "/vote {id} CHOICE votes."
)
LONG = "New comment C{c} on your issue #{id}: {text}"
TIMEOUT = 400.0


def _setup(app: App, fake: FakeProcess) -> tuple[list[int], list[int]]:
    """3,000 residents in 20 buildings, each with a Telegram account; a group bound to each
    building. Their person ids and group ids; the people and groups in the fake."""
    now = app.clock.now()
    with app.db.transaction() as session:
        register.import_file(session, register_csv(buildings=GROUPS, rooms=ALONE // GROUPS), now)
        community = session.scalar(select(Scope.id).where(Scope.level == "community"))
        assert community is not None
        settings.put(session, community, "quiet_hours", "off")
        people = session.execute(
            select(Person.id, Household.building_id).join(Household, Household.id == Person.household_id)
        ).all()
        chief = session.scalar(select(Person.id).where(Person.household_id.is_(None)))
        buildings = sorted({b for _, b in people})
        groups = []
        for k, building in enumerate(buildings):
            group = Group(
                channel="telegram", chat_id=str(GROUP_BASE - k), community_id=community, scope_id=building,
                title=f"{k}栋群", bound_by=chief, bound_at=now,
            )  # fmt: skip
            session.add(group)
            session.flush()
            groups.append(group.id)
    ids = [p for p, _ in people]
    accounts(app, {FIRST + p: p for p in ids})
    fake.call("users", [(FIRST + p, f"居民{p}") for p in ids])
    for k in range(GROUPS):
        fake.call("group", GROUP_BASE - k, {}, f"{k}栋群")
    return ids, groups


def _queue(app: App, people: list[int], groups: list[int]) -> None:
    """The groups' messages first (they were waiting already), then the broadcast."""
    now = app.clock.now()
    with app.db.transaction() as session:
        for n in range(PER_GROUP):
            for group in groups:
                text = f"第{n}条评论:" + "楼道里的灯坏了很久,晚上出入很不方便。" * 110
                outbox.notify_group(session, group, now, LONG, c=n, id=1, text=text)
        outbox.notify_all(session, people, now, NOTICE, id=1, title="加装电梯", closes="2026-12-31 18:00")


def _sender(app: App, channel: TelegramChannel) -> Any:
    """The clock's wake-up (as `run_forever` runs it) until stopped."""

    async def main(stop: asyncio.Event) -> None:
        wakeup = Wakeup(app, [channel])
        try:
            failed = await wakeup.connect()
            if failed:
                raise failed[0]
            wakeup.start()
            await stop.wait()
        finally:
            await wakeup.stop()

    return main


def _broadcast(people: int, groups: int) -> dict[str, Any]:
    """Send `people` notifications (and, with `groups`, the groups' backlog); what the fake saw."""
    db = fresh_sqlite(f"tg-broadcast-{people}")
    with FakeProcess(overall_per_second=LIMIT) as fake:
        cfg = config(db.url, fake.api_url, fake.token, new_key())
        app = App(cfg, db=db)
        ids, group_ids = _setup(app, fake)
        _queue(app, ids[:people], group_ids[:groups])
        expected = people + groups * PER_GROUP
        bot = BotThread(_sender(app, TelegramChannel(cfg)), "yishi-sender")
        bot.start()
        try:
            wait(
                lambda: bot.check() or fake.call("counts").get("text", 0) >= expected,
                f"{expected} messages sent",
                timeout=TIMEOUT,
            )
            wait(lambda: unsent(app) == 0, "every row marked sent", timeout=30)
        finally:
            bot.close()
        records = fake.call("records")
        counts = fake.call("counts")
    db.dispose()
    texts = [(chat, at, text) for chat, _, kind, at, text in records if kind == "text"]
    per_chat = Counter(chat for chat, _, _ in texts)
    wrong = [chat for chat in (FIRST + p for p in ids[:people]) if per_chat[chat] != 1]
    reached = sum(1 for chat in per_chat if chat > 0)
    if wrong or reached != people:
        raise RuntimeError(
            f"{reached} residents got messages, {len(wrong)} not exactly once "
            f"(e.g. {[(c, per_chat[c]) for c in wrong[:3]]})"
        )
    short = {chat: n for chat, n in per_chat.items() if chat < 0 and n != PER_GROUP}
    if short or sum(1 for chat in per_chat if chat < 0) != groups:
        raise RuntimeError(f"groups not sent each of their {PER_GROUP} messages once: {short}")
    return {"texts": texts, "refused": counts.get("refused 429", 0)}


def _rate(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0])


@quiet()
def alone() -> Result:
    found = _broadcast(ALONE, 0)
    times = sorted(at for _, at, _ in found["texts"])
    rate = _rate(times)
    seconds = [
        sum(1 for t in times if times[0] + s <= t < times[0] + s + 1)
        for s in range(int(times[-1] - times[0]))
    ]
    return Result(
        "TG broadcast, 3,000 private (30/s fake)", rate, "msg/s", 0.9 * LIMIT, True,
        f"each delivered once, in {times[-1] - times[0]:.0f} s; {found['refused']} refused by the fake (429); "
        f"messages a second: {min(seconds)} at the least, {max(seconds)} at the most",
    )  # fmt: skip


@quiet()
def with_groups() -> list[Result]:
    found = _broadcast(WITH_GROUPS, GROUPS)
    texts = found["texts"]
    start = min(at for _, at, _ in texts)
    private = sorted(at for chat, at, _ in texts if chat > 0)
    end = private[-1]
    in_groups = [at for chat, at, _ in texts if chat < 0 and at <= end]
    span = end - start
    first_private = private[0] - start
    return [
        Result(
            "TG broadcast, 1,500 private + 20 groups", len(private) / span, "msg/s", 20, True,
            f"from the run's first message to the last private one ({span:.0f} s; the first private one "
            f"after {first_private:.1f} s, {_rate(private):.1f}/s from it to the last); "
            f"{found['refused']} refused by the fake (429)",
        ),
        Result(
            "TG broadcast: the 20 groups meanwhile", len(in_groups) / span, "msg/s", None, True,
            f"{len(in_groups)} of their {GROUPS * PER_GROUP} messages in those {span:.0f} s "
            f"(their pace allows {GROUPS * 20 / 60:.1f}/s together)",
        ),
    ]  # fmt: skip
