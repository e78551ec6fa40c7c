"""Updates handled per second on Telegram, end to end, against a bare echo bot on the same fake.

500 residents of one building act through the fake Bot API, which runs with them in a process of
its own (bench/tg_fake.py): each takes the next step of their script once the bot has answered
the last, as people do. The mix: 100 of them join by their invite link (`/start join_CODE`; the
other 400 joined before), each asks `/help`, `/issues` or `/issue N`, backs an issue (`/support N`),
some comment (`/comment N …`), 50 raise an issue through the dialog (title and details typed, the
scope and "发布" pressed), and each votes by a button under the vote message in the building's
bound group, some of them twice (a change). Yishi runs as `yishi telegram` does (long polling, the
clock and the sender in-process) on SQLite, its replies and what it sends on its own (a comment
told to the issue's author, a discussion opened announced in the group) through the one bot.

The echo bot is python-telegram-bot alone, set up as yishi's is (bench/tg_common.py `Echo`),
answering a message with its text and a press with answerCallbackQuery; its residents take the
same steps (their presses on messages with those buttons put in the fake for them), after
yishi's run, in the same fake.

What bounds both: `AIORateLimiter` lets 29 requests a second through, evenly, that name a chat
(sending and editing messages; answering a press names none), and each typed step is answered with at
least one message. The echo bot sends one a message; yishi sends more (a join is three
messages, a dialog's pressed step edits the prompt and sends the next), and its notifications
share the 29. The notes give the requests of each kind made in each run.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from bench.common import Result, fresh_sqlite
from bench.tg_common import (
    BUILDING,
    GROUP,
    LEADER,
    BotThread,
    Echo,
    bind_group,
    codes,
    config,
    join,
    open_vote,
    polling_bot,
    populate,
    quiet,
    raise_issue,
    resident_name,
    say,
    unsent,
    user_id,
    vote_messages,
    wait,
)
from bench.tg_fake import FakeProcess, Step
from bot.app import App
from storage.seal import new_key

HELPERS = 12  # residents 0…11: they raise the issues before the run, and support the first one
RESIDENTS = 500  # residents 12…511: the ones measured
JOINING = 100  # of them join during the run
RAISING = 50  # of them raise an issue through the dialog
ISSUES = 11  # #1 is voted on; #2…#11 wait for support
COMMENTS = ["同意,建议尽快处理", "我家也遇到了", "支持!", "希望居委会尽快回复", "这个问题确实存在"]
TOPICS = ["电梯", "停车", "垃圾分类", "漏水", "噪音", "绿化", "路灯", "快递柜"]
CHOICES = ("同意", "反对", "弃权")
RUN_TIMEOUT = 300.0
KINDS = ("text", "edit", "markup", "delete", "photo", "answers")


def _scripts(rng: random.Random, join_codes: dict[int, str], vote: int | None) -> dict[int, list[Step]]:
    """Each measured resident's steps. With `vote` None (the echo bot), presses name no message:
    `_echo_scripts` points them at messages of their own."""
    raisers = set(rng.sample(range(HELPERS, HELPERS + RESIDENTS), RAISING))
    scripts: dict[int, list[Step]] = {}
    for n in range(HELPERS, HELPERS + RESIDENTS):
        me = user_id(n)
        steps = [Step("say", f"/start join_{join_codes[me]}")] if me in join_codes else []
        steps.append(Step("say", rng.choice(["/help", "/issues", f"/issue {rng.randint(1, ISSUES)}"])))
        steps.append(Step("say", f"/support {rng.randint(2, ISSUES)}"))
        if rng.random() < 0.4:
            steps.append(Step("say", f"/comment {rng.randint(1, ISSUES)} {rng.choice(COMMENTS)}"))
        if n in raisers:
            topic = rng.choice(TOPICS)
            steps += [
                Step("say", "/raise"),
                Step("say", f"{BUILDING}{topic}问题,居民{n}反映"),
                Step("say", f"{topic}问题影响居民生活,希望尽快解决。"),
                Step("press", "本楼"),
                Step("press", "发布"),
            ]
        first = rng.randrange(3)
        steps.append(Step("press", CHOICES[first], GROUP, vote))
        if rng.random() < 0.2:
            steps.append(Step("press", CHOICES[(first + 1) % 3], GROUP, vote))
        scripts[me] = steps
    return scripts


def _prepare(app: App, fake: FakeProcess) -> tuple[int, dict[int, str]]:
    """The building, its leader and helpers joined, the group bound, issue #1 to a vote and #2…#11
    raised; 400 of the measured residents joined; the people in the fake. The poll, and the invite
    codes of those who join during the run."""
    populate(app, HELPERS + RESIDENTS)
    helpers = {user_id(n): resident_name(n) for n in range(HELPERS)}
    join(app, {LEADER: "楼长", **helpers})
    bind_group(app)
    rng = random.Random(5)
    first = raise_issue(app, user_id(0), "加装电梯", [u for u in helpers if u != user_id(0)])
    poll = open_vote(app, first)
    for k in range(2, ISSUES + 1):
        topic = TOPICS[k % len(TOPICS)]
        for text in ("/raise", f"{topic}问题第{k}号", f"{topic}问题,影响居民生活。", "1", "1"):
            say(app, user_id(k - 1), text)
    measured = list(range(HELPERS, HELPERS + RESIDENTS))
    later = set(rng.sample(measured, JOINING))
    join(app, {user_id(n): resident_name(n) for n in measured if n not in later})
    known = codes(app)
    joining = {user_id(n): known[resident_name(n)] for n in later}
    people = [(LEADER, "楼长"), *((user_id(n), resident_name(n)) for n in range(HELPERS + RESIDENTS))]
    fake.call("users", people)
    members = {user: "member" for user, _ in people} | {LEADER: "administrator"}
    fake.call("group", GROUP, members, f"{BUILDING}邻里群")
    return poll, joining


def _measure(fake: FakeProcess, scripts: dict[int, list[Step]], handled: Callable[[], int]) -> dict[str, Any]:
    """Run the residents; the requests the bot made meanwhile, by kind."""
    before = fake.call("counts")
    start = handled()
    report = fake.call("run", scripts, timeout=RUN_TIMEOUT)
    if report["stuck_count"]:
        raise RuntimeError(f"{report['stuck_count']} residents got no answer, e.g. {report['stuck']}")
    wait(lambda: handled() - start >= report["updates"], "every update handled", timeout=30)
    after = fake.call("counts")
    report["made"] = {k: after.get(k, 0) - before.get(k, 0) for k in KINDS}
    return report


def _made(report: dict[str, Any]) -> str:
    made, updates = report["made"], report["updates"]
    seconds = report["ended"] - report["began"]
    chat = sum(made[k] for k in KINDS if k != "answers")
    shown = ", ".join(f"{made[k]} {k}" for k in KINDS if made[k])
    late = f"; {report['refused']} presses answered too late (query too old)" if report["refused"] else ""
    return f"{chat / updates:.2f} requests naming a chat an update ({chat / seconds:.1f}/s: {shown}){late}"


@quiet()
def run() -> list[Result]:
    db = fresh_sqlite("tg-updates")
    with FakeProcess() as fake:
        cfg = config(db.url, fake.api_url, fake.token, new_key())
        app = App(cfg, db=db)
        poll, joining = _prepare(app, fake)
        bot, runner = polling_bot(app, cfg)
        bot.start()
        try:
            vote = vote_messages(fake, [poll], bot.check)[poll]
            wait(lambda: unsent(app) == 0, "what the set-up queued, sent")
            scripts = _scripts(random.Random(7), joining, vote)
            yishi = _measure(fake, scripts, lambda: runner.edge.handled)
            bot.check()
        finally:
            bot.close()
        db.dispose()

        echo = Echo(cfg)
        echo_scripts = _echo_scripts(fake, _scripts(random.Random(7), joining, None))
        thread = BotThread(echo.run, "echo-polling")
        thread.start()
        try:
            wait(lambda: echo.polling or thread.failure, "the echo bot polling")
            thread.check()
            time.sleep(0.5)  # anything left in the fake's queue from the run before goes first
            plain = _measure(fake, echo_scripts, lambda: echo.handled)
        finally:
            thread.close()

    rates = {}
    for name, report in (("yishi", yishi), ("echo", plain)):
        rates[name] = report["updates"] / (report["ended"] - report["began"])
    mix = (
        f"{yishi['updates']:,} updates from {RESIDENTS} residents ({JOINING} joins, {RAISING} raise dialogs, "
        f"commands, button votes)"
    )
    return [
        Result("TG updates/s, yishi (polling, SQLite)", rates["yishi"], "upd/s", None, True,
               f"{mix}; {_made(yishi)}"),
        Result("TG updates/s, echo bot", rates["echo"], "upd/s", None, True,
               f"the same steps; {_made(plain)}"),
        Result("TG updates/s, yishi / echo", rates["yishi"] / rates["echo"], "ratio", 0.5, True,
               "both bound by AIORateLimiter's 29 requests/s that name a chat (answering a press names none)"),
    ]  # fmt: skip


def _echo_scripts(fake: FakeProcess, scripts: dict[int, list[Step]]) -> dict[int, list[Step]]:
    """The same steps, the presses on messages put in the fake for the echo bot: one in the group
    with the vote's buttons, one in each raiser's private chat with the dialog's."""
    group = fake.call("seed", GROUP, "表决", [(label, f"e:{n}") for n, label in enumerate(CHOICES)])
    changed = {}
    for user, steps in scripts.items():
        private = None
        if any(s.kind == "press" and s.chat is None for s in steps):
            private = fake.call("seed", user, "选择范围", [("本楼(1栋)", "e:scope"), ("发布", "e:publish")])
        changed[user] = [
            s._replace(message_id=group if s.chat == GROUP else private) if s.kind == "press" else s
            for s in steps
        ]
    return changed
