"""The fake Bot API (tests/fake_telegram.py) in a process of its own, with the residents who use it.

Telegram is never in the bot's interpreter: run in the benchmark's process, the fake's HTTP
threads and the simulated residents would take the GIL from the bot they measure. Here the fake
and the people run in a spawned process; the benchmark talks to it through a pipe (`FakeProcess.call`,
a method of `Remote` by name) and the bot talks to it over HTTP, as to Telegram.

The residents (`Remote.run`) act as people do: each says or presses the next step of their
script once the bot has answered the previous one (a message in their private chat, or the
answer to their button press), and presses a button only once the message carrying it is there.
`Remote.burst` presses many buttons at once, as a crowd does under a group's vote message;
`Remote.held_presses` makes presses without queueing them, for a driver that POSTs them to
webhooks itself. Times are `time.monotonic()`, which is one clock for every process on Linux.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import queue
import time
import traceback
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, NamedTuple

from tests.fake_telegram import JSON, FakeTelegram, Params, running

START_TIMEOUT = 30.0


class Step(NamedTuple):
    """One thing a resident does: `say` a text (in their private chat), or `press` the button whose
    label starts with `text` on message `message_id` of `chat` (None: the last message the bot sent
    to their private chat, once it has that button)."""

    kind: str  # "say" | "press"
    text: str
    chat: int | None = None
    message_id: int | None = None


@dataclass
class BenchFake(FakeTelegram):
    """The fake, telling the residents what the bot did as it happens (its methods run with the
    lock held, in the HTTP server's threads): `events` gets ("chat", chat id) for each message sent,
    edited or deleted there, and ("answer", query id) for each answer to a press, refused or not."""

    events: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    per_chat: Counter = field(default_factory=Counter)  # what the bot did in each chat, so far
    own: dict[int, JSON] = field(default_factory=dict)  # the last message the bot sent to each chat
    tries: dict[str, tuple[float, bool, str | None]] = field(default_factory=dict)  # query: time, ok, text
    aside: list[JSON] | None = None  # when a list: updates made go here instead of to the bot
    refusals: Counter = field(default_factory=Counter)  # requests refused, by status (429: too many)

    def _record(self, message: Mapping[str, Any], kind: str, markup: JSON | None) -> None:
        super()._record(message, kind, markup)
        chat = message["chat"]["id"]
        self.per_chat[chat] += 1
        self.events.put(("chat", chat))

    def _sent(self, chat: JSON, markup: JSON | None, **content: Any) -> JSON:
        message = super()._sent(chat, markup, **content)
        self.own[chat["id"]] = message
        return message

    def answer(self, path: str, params: Params) -> tuple[int, JSON]:
        status, payload = super().answer(path, params)
        if status != 200:
            with self.lock:
                self.refusals[status] += 1
        if path.lower().endswith("/answercallbackquery"):  # (METHODS calls the base class's method)
            query_id = params.text("callback_query_id")
            with self.lock:
                self.tries[query_id] = (time.monotonic(), status == 200, params.text("text") or None)
            self.events.put(("answer", query_id))
        return status, payload

    def _enqueue(self, update: JSON) -> JSON:
        if self.aside is None:
            return super()._enqueue(update)
        update = {"update_id": self._next("update")} | {k: v for k, v in update.items() if k != "update_id"}
        self.aside.append(update)
        return update


def _button(message: JSON | None, label: str) -> str | None:
    """The callback data of the button labelled `label…` of a message, if it has one."""
    for row in (message or {}).get("reply_markup", {}).get("inline_keyboard", []):
        for button in row:
            if button.get("text", "").startswith(label) and "callback_data" in button:
                return str(button["callback_data"])
    return None


class Remote:
    """What the benchmark asks of the fake's process, by name."""

    def __init__(self, fake: BenchFake) -> None:
        self.fake = fake

    def address(self) -> tuple[str, str]:
        return self.fake.api_url, self.fake.token

    def set(self, **settings: Any) -> None:
        with self.fake.lock:
            for name, value in settings.items():
                setattr(self.fake, name, value)

    def users(self, people: list[tuple[int, str]]) -> None:
        for user_id, name in people:
            self.fake.user(user_id, name)

    def group(self, chat_id: int, members: dict[int, str], title: str, bot_is_admin: bool = False) -> None:
        self.fake.group(chat_id, members, bot_is_admin=bot_is_admin, title=title)

    def buttons(self, message_id: int) -> list[str]:
        """The callback data of a message's buttons, as it is now."""
        with self.fake.lock:
            message = self.fake._store.get(message_id) or {}
            rows = message.get("reply_markup", {}).get("inline_keyboard", [])
            return [str(b["callback_data"]) for row in rows for b in row if "callback_data" in b]

    def seed(self, chat_id: int, text: str, buttons: list[tuple[str, str]]) -> int:
        """A message from the bot with these (label, data) buttons, as if it had sent it (the echo
        bot sends none, and its residents press buttons all the same)."""
        fake = self.fake
        markup = {"inline_keyboard": [[{"text": label, "callback_data": data}] for label, data in buttons]}
        with fake.lock:
            chat = fake.groups[chat_id].chat() if chat_id in fake.groups else fake._private_chat(chat_id)
            message = fake._message(chat, **{"from": fake.bot}, text=text, reply_markup=markup)
            return int(message["message_id"])

    def counts(self) -> dict[str, int]:
        """What the bot has done so far: messages by kind, answers, updates queued for it."""
        with self.fake.lock:
            kinds = Counter(m["kind"] for m in self.fake.messages)
            refused = {f"refused {status}": n for status, n in self.fake.refusals.items()}
            return {**kinds, "answers": len(self.fake.answers), "enqueued": self.fake.enqueued, **refused}

    def records(self) -> list[tuple[int, int, str, float, str | None]]:
        """(chat, message id, kind, time, text) of what the bot did, in order."""
        with self.fake.lock:
            return [
                (m["chat_id"], m["message_id"], m["kind"], m["time"], m["text"]) for m in self.fake.messages
            ]

    def answers(self, query_ids: list[str]) -> list[tuple[float, bool, str | None] | None]:
        """When each press was answered, whether the answer was taken, and its text."""
        with self.fake.lock:
            return [self.fake.tries.get(q) for q in query_ids]

    def held_presses(self, presses: list[tuple[int, int, str]]) -> list[JSON]:
        """The updates of these (user, message id, data) presses, for a driver to POST; not queued."""
        with self.fake.lock:
            self.fake.aside = []
        try:
            for user_id, message_id, data in presses:
                self.fake.press(user_id, message_id, data)
            with self.fake.lock:
                return list(self.fake.aside)
        finally:
            with self.fake.lock:
                self.fake.aside = None

    def burst(self, presses: list[tuple[int, int, str]], timeout: float) -> dict[str, Any]:
        """Press all of them at once, in order; wait until each is answered. Per press: when it was
        made, when answered, whether the answer was taken, its text."""
        fake = self.fake
        _drain(fake.events)
        made: list[tuple[str, float]] = []
        for user_id, message_id, data in presses:
            made.append((fake.press(user_id, message_id, data), time.monotonic()))
        deadline = time.monotonic() + timeout
        waiting = {q for q, _ in made}
        with fake.lock:
            waiting -= fake.tries.keys()
        while waiting and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                kind, key = fake.events.get(timeout=0.2)
                if kind == "answer":
                    waiting.discard(key)
        with fake.lock:
            tries = dict(fake.tries)
        return {
            "presses": [(at, *(tries.get(q) or (None, False, None))) for q, at in made],
            "unanswered": len(waiting),
        }

    def run(self, scripts: dict[int, list[Step]], timeout: float) -> dict[str, Any]:
        """Every resident through their script; when the first step was taken and the last answered,
        how many updates the bot was sent, and who got stuck where."""
        return _Residents(self.fake, scripts).run(timeout)


def _drain(events: queue.SimpleQueue) -> None:
    with contextlib.suppress(queue.Empty):
        while True:
            events.get_nowait()


class _Residents:
    def __init__(self, fake: BenchFake, scripts: dict[int, list[Step]]) -> None:
        self.fake, self.scripts = fake, {uid: [Step(*s) for s in steps] for uid, steps in scripts.items()}
        self.next = dict.fromkeys(scripts, 0)  # each resident's next step
        self.after_reply: dict[int, tuple[int, int]] = {}  # chat: (resident, messages there before)
        self.after_answer: dict[str, int] = {}  # query: resident
        self.for_button: dict[int, int] = {}  # chat: resident waiting for a message with the button
        self.ready: deque[int] = deque(scripts)
        self.done: dict[int, float] = {}
        self.refused = 0

    def run(self, timeout: float) -> dict[str, Any]:
        fake = self.fake
        _drain(fake.events)
        enqueued = fake.enqueued
        began = time.monotonic()
        deadline = began + timeout
        while len(self.done) < len(self.scripts) and time.monotonic() < deadline:
            while self.ready:
                self._act(self.ready.popleft())
            try:
                kind, key = fake.events.get(timeout=0.5)
            except queue.Empty:
                continue
            if kind == "answer":
                resident = self.after_answer.pop(key, None)
                if resident is not None:
                    with fake.lock:
                        self.refused += not fake.tries[key][1]
                    self._advance(resident)
                continue
            waiting = self.after_reply.get(key)
            if waiting is not None:
                resident, before = waiting
                with fake.lock:
                    answered = fake.per_chat[key] > before
                if answered:
                    del self.after_reply[key]
                    self._advance(resident)
            if key in self.for_button:
                self.ready.append(self.for_button.pop(key))
        stuck = {
            uid: self.scripts[uid][self.next[uid]]._asdict() for uid in self.scripts if uid not in self.done
        }
        return {
            "began": began,
            "ended": max(self.done.values(), default=began),
            "updates": fake.enqueued - enqueued,
            "refused": self.refused,
            "stuck": dict(list(stuck.items())[:5]),
            "stuck_count": len(stuck),
        }

    def _advance(self, resident: int) -> None:
        self.next[resident] += 1
        if self.next[resident] == len(self.scripts[resident]):
            self.done[resident] = time.monotonic()
        else:
            self.ready.append(resident)

    def _act(self, resident: int) -> None:
        fake = self.fake
        step = self.scripts[resident][self.next[resident]]
        chat = step.chat if step.chat is not None else resident
        if step.kind == "say":
            assert chat == resident, "the residents speak in their private chat; in groups they press"
            with fake.lock:
                before = fake.per_chat[chat]
            fake.say(resident, step.text)
            self.after_reply[chat] = (resident, before)
            return
        with fake.lock:
            if step.message_id is not None:
                message_id: int | None = step.message_id
                data = _button(fake._store.get(step.message_id), step.text)
            else:
                shown = fake.own.get(chat)
                message_id = shown["message_id"] if shown is not None else None
                data = _button(shown, step.text)
        if data is None or message_id is None:  # not there yet: pressed once the bot sends it
            self.for_button[chat] = resident
            return
        self.after_answer[fake.press(resident, message_id, data)] = resident


def _serve(conn: Connection, settings: dict[str, Any]) -> None:
    """The fake's process: the fake running, and the benchmark's calls answered in turn."""
    fake = BenchFake(**settings)
    with running(fake):
        remote = Remote(fake)
        conn.send(("ready", None))
        while True:
            try:
                name, args, kwargs = conn.recv()
            except EOFError:
                return
            if name == "stop":
                conn.send(("ok", None))
                return
            try:
                conn.send(("ok", getattr(remote, name)(*args, **kwargs)))
            except Exception:
                conn.send(("error", traceback.format_exc()))


class FakeProcess:
    """The fake Bot API and its residents in a spawned process."""

    def __init__(self, **settings: Any) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, settings), daemon=True, name="fake-telegram")
        self.api_url, self.token = "", ""

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.conn.send((name, args, kwargs))
        status, value = self.conn.recv()
        if status == "error":
            raise RuntimeError(f"the fake's process failed in {name}:\n{value}")
        return value

    def __enter__(self) -> FakeProcess:
        self.process.start()
        try:
            if not self.conn.poll(START_TIMEOUT):
                raise EOFError
            self.conn.recv()
        except EOFError:  # not ready in time, or gone (its traceback is on stderr)
            self.process.kill()
            self.process.join()
            raise RuntimeError(
                f"the fake Bot API's process did not start ({self.process.exitcode})"
            ) from None
        self.api_url, self.token = self.call("address")
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError, EOFError):
            self.conn.send(("stop", (), {}))
            self.conn.poll(10) and self.conn.recv()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
