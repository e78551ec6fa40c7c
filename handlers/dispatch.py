"""The one way in: an `Incoming` from any channel becomes replies.

Text is NFKC-normalised. A `/command` (or, outside groups, a Chinese keyword as the first
word) runs that command; inside a dialog any other line answers the current step, and a
`/command` leaves the dialog first. Each message is one transaction: a refusal undoes
the command's changes and answers in the person's language; an unexpected exception is
logged with the update (vote arguments redacted) and answered with an apology.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError

from flows.clock import Clock
from flows.errors import Refused
from handlers import dialog
from handlers import format as fmt
from handlers.commands import BY_ALIAS, BY_NAME, CANCEL, REFUSALS, Command, registered, unbound
from handlers.context import Ctx, choose_locale, load_sender
from handlers.messages import Incoming, Reply
from handlers.raise_dialog import RAISE
from handlers.vote_dialog import OPEN_VOTE
from locales import DEFAULT_LOCALE, N_, Translator
from storage.db import Database
from storage.models import DialogState
from storage.seal import BallotKey

log = logging.getLogger("yishi.dispatch")

DIALOGS = {d.name: d for d in (RAISE, OPEN_VOTE)}
SECRET_COMMANDS = ("/vote", "投票", "/proxyvote", "代投")
VOTE_WORDS = ("投票", "代投")
_SLASH = re.compile(r"^/([A-Za-z_]+)(?:@\w+)?(?:\s+(.*))?$", re.DOTALL)
APOLOGY = N_("Sorry, something went wrong on our side and nothing was changed. Please try again later.")


def redact(incoming: Incoming) -> Incoming:
    """The update as it may be logged: no arguments of vote commands, no vote button payloads."""
    text, payload = incoming.text, incoming.payload
    first = unicodedata.normalize("NFKC", text).strip().split(maxsplit=1)
    if first and any(first[0].lower().startswith(c) for c in SECRET_COMMANDS):
        text = first[0] + " [redacted]"
    if payload and payload.startswith("v:"):
        payload = "v:[redacted]"
    return Incoming(incoming.channel, incoming.account_id, incoming.chat_id, text, payload, incoming.is_group)


@dataclass(frozen=True)
class Parsed:
    command: Command | None
    args: str
    word: str  # what was typed as the command, for "unknown command"


def parse(text: str, is_group: bool) -> Parsed | None:
    """The command a line names, or None when it is plain text."""
    m = _SLASH.match(text)
    if m:
        return Parsed(BY_NAME.get(m.group(1).lower()), (m.group(2) or "").strip(), "/" + m.group(1))
    if text.startswith("/"):
        return Parsed(None, "", text.split(maxsplit=1)[0])
    if is_group:
        return None
    word, _, rest = text.partition(" ")
    if word in BY_ALIAS:
        return Parsed(BY_ALIAS[word], rest.strip(), word)
    for alias, command in BY_ALIAS.items():  # 附议7, 查看#7: a keyword run into its number
        if text.startswith(alias) and text[len(alias) : len(alias) + 1] in "0123456789#＃C":
            return Parsed(command, text[len(alias) :].strip(), alias)
    return None


class Dispatcher:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        key: BallotKey,
        default_locale: str = DEFAULT_LOCALE,
        default_timezone: str = "Asia/Shanghai",
    ) -> None:
        self.db, self.clock, self.key = db, clock, key
        self.default_locale, self.default_timezone = default_locale, default_timezone

    def handle(self, incoming: Incoming) -> list[Reply]:
        text = unicodedata.normalize("NFKC", incoming.payload or incoming.text or "").strip()
        locale = self.default_locale
        ctx: Ctx | None = None
        for attempt in (1, 2):
            try:
                with self.db.transaction() as session:
                    now = self.clock.now()
                    sender = load_sender(session, incoming.channel, incoming.account_id, now)
                    locale = choose_locale(sender.person_locale, sender.account_locale, self.default_locale)
                    state = session.get(DialogState, sender.account_id) if sender.in_dialog else None
                    ctx = Ctx(
                        session,
                        sender,
                        incoming,
                        now,
                        Translator(locale),
                        self.key,
                        self.default_timezone,
                        state,
                    )
                    return self._route(ctx, text)
            except Refused as refusal:  # a command said no and its whole transaction is undone
                assert ctx is not None
                return [Reply(fmt.refusal(ctx.t, refusal))]
            except DBAPIError as exc:
                # a connection the database dropped (a restart) is found out by its first use: once
                # more on a new one, rather than checking every connection before every message
                if exc.connection_invalidated and attempt == 1:
                    log.warning("the database connection was lost; handling %r again", redact(incoming))
                    continue
                log.exception("unexpected error handling %r", redact(incoming))
                return [Reply(Translator(locale)(APOLOGY))]
            except Exception:
                log.exception("unexpected error handling %r", redact(incoming))
                return [Reply(Translator(locale)(APOLOGY))]
        raise AssertionError("unreachable")

    def _route(self, ctx: Ctx, text: str) -> list[Reply]:
        parsed = parse(text, ctx.incoming.is_group)
        state = dialog.load(ctx)
        if state is not None:
            # a vote keyword leaves too: dialog data never holds the arguments of a vote
            leaving = (
                text.startswith("/") or text in CANCEL.aliases or text.split(maxsplit=1)[0] in VOTE_WORDS
            )
            if not leaving:
                return dialog.advance(ctx, DIALOGS[state.flow], state, text)
            if parsed is not None and parsed.command is not CANCEL:
                dialog.clear(ctx)
                left = Reply(ctx.t("(The previous dialog was cancelled.)"))
                try:  # the dialog stays left, in this transaction, even if the command is refused
                    with ctx.session.begin_nested():
                        return [left, *self._run(ctx, parsed)]
                except Refused as refusal:
                    return [left, Reply(fmt.refusal(ctx.t, refusal))]
        if parsed is None:
            if ctx.incoming.is_group or not text:
                return []
            return [Reply(ctx.t("I did not understand that. Send /help for the commands you can use."))]
        return self._run(ctx, parsed)

    def _run(self, ctx: Ctx, parsed: Parsed) -> list[Reply]:
        command = parsed.command
        if command is None:
            return [
                Reply(
                    ctx.t(
                        "Unknown command {word}. Send /help for the commands you can use.", word=parsed.word
                    )
                )
            ]
        if not command.who(ctx):
            # someone not in the register is first told how to join, whatever the command needs
            who = registered if ctx.member is None and command.who is not unbound else command.who
            return [Reply(ctx.t(REFUSALS[who]))]
        return command.run(ctx, parsed.args)
