"""The console: a channel like Telegram and WeChat, on a terminal or a script on stdin.

Beyond the shared vocabulary it knows two commands of its own: `/as NAME` speaks as a
person of the register (as if their account were bound here), and `/clock +3d` moves
the console's clock. What the bot sends to anyone else is printed as `[→ NAME] text`.
"""

from __future__ import annotations

import sys
import unicodedata
from typing import TextIO

from sqlalchemy import select

from bot.app import App
from flows import people
from flows.clock import MovableClock
from flows.errors import Refused
from flows.outbox import Recipient
from flows.when import parse_duration
from handlers import format as fmt
from handlers.context import find_account, locale_of, person_of
from handlers.messages import Incoming, Reply
from locales import Translator
from storage.models import Household, Person, Scope

CHANNEL = "console"
UNBOUND = "local"


class Console:
    def __init__(self, app: App, out: TextIO = sys.stdout) -> None:
        self.app, self.out = app, out
        self.account_id = UNBOUND

    # --- the channel's two directions -------------------------------------------------

    max_length = None  # a terminal takes a digest whole

    def send(self, recipient: Recipient, text: str) -> None:
        """Deliver a message the bot sends on its own (the outbox's sender for this channel)."""
        self.print(f"[→ {recipient.name}] {text}")

    def print(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def show(self, replies: list[Reply]) -> None:
        for reply in replies:
            lines = [reply.text] if reply.text else []
            lines += [f"[{n}] {o.label}" for n, o in enumerate(reply.options, start=1)]
            if lines:
                self.print("\n".join(lines))

    # --- one line typed ---------------------------------------------------------------

    def line(self, text: str) -> None:
        text = unicodedata.normalize("NFKC", text).strip()
        if not text:
            return
        word, _, rest = text.partition(" ")
        if word == "/as":
            self.show([self.speak_as(rest.strip())])
        elif word == "/clock":
            self.show([self.move_clock(rest.strip())])
        else:
            self.show(self.app.dispatcher.handle(Incoming(CHANNEL, self.account_id, CHANNEL, text=text)))
        self.deliver()

    def deliver(self) -> None:
        """The console is its own clock: what fell due runs, then what the bot says is printed."""
        if self.app.due():
            self.app.step({CHANNEL: self})

    def _t(self) -> Translator:
        with self.app.db.transaction() as session:
            account = find_account(session, CHANNEL, self.account_id, self.app.clock.now())
            return Translator(locale_of(account, person_of(session, account), self.app.config.locale))

    def speak_as(self, name: str) -> Reply:
        if not name:
            self.account_id = UNBOUND
            t = self._t()
            return Reply(t("Now speaking as this console's own account (bound only by /join)."))
        try:
            with self.app.db.transaction() as session:
                person = people.find(session, name)
                external = f"person:{person.id}"
                account = find_account(session, CHANNEL, external, self.app.clock.now())
                account.person_id = person.id
                where = _where(session, person)
                t = Translator(locale_of(account, person, self.app.config.locale))
        except Refused as refusal:
            return Reply(fmt.refusal(self._t(), refusal))
        self.account_id = external
        return Reply(t("Now speaking as {name} ({where}).", name=person.name, where=where))

    def move_clock(self, arg: str) -> Reply:
        t = self._t()
        clock = self.app.clock
        delta = parse_duration(arg[1:]) if arg.startswith("+") else None
        if delta is None or not isinstance(clock, MovableClock):
            return Reply(t("Usage: {usage}", usage="/clock +30m | +12h | +3d | +2w"))
        clock.advance(delta)
        return Reply(t("The clock is now {time} UTC.", time=clock.now().strftime("%Y-%m-%d %H:%M")))

    # --- the loop ---------------------------------------------------------------------

    def run(self, stdin: TextIO = sys.stdin) -> int:
        interactive = stdin.isatty()
        self.print(self.banner())
        self.deliver()  # catch up on what fell due while nothing ran
        if interactive:
            import readline  # noqa: F401  (line editing and history for input())

            while True:
                try:
                    self.line(input("> "))
                except EOFError:
                    self.print("")
                    return 0
                except KeyboardInterrupt:
                    self.print("")
        for text in stdin:
            self.line(text)
        return 0

    def banner(self) -> str:
        with self.app.db.transaction() as session:
            names = [s.name for s in session.scalars(select(Scope).where(Scope.level == "community"))]
        t = self._t()
        return t(
            "Yishi console ({communities}). /as NAME speaks as a person, /help lists the commands, Ctrl-D leaves.",
            communities=", ".join(names) or "-",
        )


def _where(session, person: Person) -> str:  # type: ignore[no-untyped-def]
    if person.household_id is not None:
        household = session.get(Household, person.household_id)
        return f"{household.building.name}{household.room}"
    scope = session.get(Scope, person.duty_scope_id)
    return scope.name if scope else ""
