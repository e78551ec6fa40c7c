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
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from flows import groups
from flows.clock import Clock
from flows.errors import Refused
from flows.messages import STALE, Incoming, Reply, Window
from handlers import ballot, dialog, spoken
from handlers import format as fmt
from handlers.commands import BY_ALIAS, BY_NAME, CANCEL, REFUSALS, Command, registered, unbound
from handlers.context import Ctx, choose_locale, load_sender
from handlers.raise_dialog import RAISE
from handlers.vote_dialog import OPEN_VOTE
from locales import DEFAULT_LOCALE, N_, Translator
from storage.db import Database
from storage.models import Account, DialogState, HandledUpdate
from storage.rows import insert_new
from storage.seal import BallotKey

log = logging.getLogger("yishi.dispatch")

DIALOGS = {d.name: d for d in (RAISE, OPEN_VOTE, spoken.SPOKEN)}
SECRET_COMMANDS = ("/vote", "投票", "/proxyvote", "代投")
VOTE_WORDS = ("投票", "代投")
_SLASH = re.compile(r"^/([A-Za-z_]+)(?:@\w+)?(?:\s+(.*))?$", re.DOTALL)
APOLOGY = N_("Sorry, something went wrong on our side and nothing was changed. Please try again later.")


_START = re.compile(r"^[A-Za-z0-9]{1,40}$")
_DEEP_LINK = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what Telegram lets a deep link start
UNBOUND_GROUP = ("linkgroup", "help", "start")  # what a group not bound to a scope is answered


def private_pointer(ctx: Ctx, name: str, args: str = "") -> Reply:
    """The answer in a group to what is done in the private chat: a pointer there (a deep link on
    Telegram) that starts it. An invite code is never repeated in it: a link in a group is
    pressed by anyone, and would bind their account to the code's owner."""
    if name == "join":
        return Reply(
            ctx.t(
                "An invite code is yours alone: send /join CODE in your private chat with me, not in a group."
            ),
            start="help",
        )
    start = f"{name}_{args}" if _START.match(args) else name
    return Reply(ctx.t("Please continue in your private chat with me: /{command}", command=name), start=start)


def _first_time(session: Session, incoming: Incoming, now: datetime) -> bool:
    """Record the update's key with the transaction that handles it: a repeat finds it (and, on
    PostgreSQL, waits for the first to commit or roll back)."""
    row = {"channel": incoming.channel, "key": incoming.update_key, "handled_at": now}
    return insert_new(session, HandledUpdate.__table__, row, ("channel", "key")) == 1


LOGGED_TEXT = 200  # characters of a message in a log line


def redact(incoming: Incoming) -> Incoming:
    """The update as it may be logged: no arguments of vote commands, no vote button payloads,
    no more than the start of a long text (a photo is never shown)."""
    text, payload = incoming.text, incoming.payload
    first = unicodedata.normalize("NFKC", text).strip().split(maxsplit=1)
    if first and any(first[0].lower().startswith(c) for c in SECRET_COMMANDS):
        text = first[0] + " [redacted]"
    if payload and payload.startswith("v:"):
        payload = "v:[redacted]"
    if len(text) > LOGGED_TEXT:
        text = f"{text[:LOGGED_TEXT]}… [{len(text):,} characters]"
    return replace(incoming, text=text, payload=payload)


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
    word, rest = [*text.split(maxsplit=1), "", ""][:2]  # the keyword may stand on a line of its own
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
        text = unicodedata.normalize("NFKC", incoming.text or "").strip()
        locale = self.default_locale
        ctx: Ctx | None = None
        for attempt in (1, 2):
            try:
                with self.db.transaction() as session:
                    now = self.clock.now()
                    if incoming.update_key is not None and not _first_time(session, incoming, now):
                        return []  # a repeat of an update handled already (a retried webhook)
                    sender = load_sender(session, incoming.channel, incoming.account_id, now, incoming.window)
                    locale = choose_locale(sender.person_locale, sender.account_locale, self.default_locale)
                    # a group never advances a person's dialog: it is not even read there
                    in_dialog = sender.in_dialog and not incoming.is_group
                    state = session.get(DialogState, sender.account_id) if in_dialog else None
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
                    if incoming.payload is not None:
                        return self._press(ctx, incoming.payload.strip())
                    return self._route(ctx, text)
            except Refused as refusal:  # a command said no and its whole transaction is undone
                assert ctx is not None
                # a pressed button is answered on the button
                return [Reply(fmt.refusal(ctx.t, refusal), alert=incoming.payload is not None)]
            except DBAPIError as exc:
                # a connection the database dropped (a restart) is found out by its first use: once
                # more on a new one, rather than checking every connection before every message
                if exc.connection_invalidated and attempt == 1:
                    log.warning("the database connection was lost; handling %r again", redact(incoming))
                    continue
                log.exception("unexpected error handling %r", redact(incoming))
                return [Reply(Translator(locale)(APOLOGY), alert=incoming.payload is not None)]
            except Exception:
                log.exception("unexpected error handling %r", redact(incoming))
                return [Reply(Translator(locale)(APOLOGY), alert=incoming.payload is not None)]
        raise AssertionError("unreachable")

    def wrote(self, channel: str, account_id: str, window: Window) -> None:
        """The person wrote what the channel answers itself (a voice message nobody could make out):
        the window it opened is kept all the same."""
        with self.db.transaction() as session:
            load_sender(session, channel, account_id, self.clock.now(), window)

    def account_gone(self, channel: str, account_id: str) -> None:
        """The platform says the person left (unfollowed the Official Account): what is for them is
        held until they are back, or goes to another account of theirs."""
        with self.db.transaction() as session:
            session.execute(
                update(Account)
                .where(
                    Account.channel == channel,
                    Account.external_id == account_id,
                    Account.blocked_at.is_(None),
                )
                .values(blocked_at=self.clock.now())
            )

    def group_presence(self, channel: str, chat_id: str, here: bool) -> None:
        """The platform says the bot was removed from a group, or is in it again."""
        with self.db.transaction() as session:
            groups.presence(session, channel, chat_id, here, self.clock.now())

    def group_moved(self, channel: str, chat_id: str, new_chat_id: str) -> None:
        """The platform gave a group a new id: its binding and what is queued for it follow."""
        with self.db.transaction() as session:
            groups.moved(session, channel, chat_id, new_chat_id)

    def _press(self, ctx: Ctx, payload: str) -> list[Reply]:
        """A button: a vote's, or a step's of the sender's dialog (never in a group)."""
        if payload.startswith("v:"):
            return ballot.press(ctx, payload)
        state = dialog.load(ctx) if payload.startswith("d:") else None
        if state is None:
            raise Refused(STALE)
        flow = DIALOGS[state.flow]
        return dialog.advance(ctx, flow, state, dialog.pressed(flow, state, payload), button=True)

    def _route(self, ctx: Ctx, text: str) -> list[Reply]:
        if ctx.incoming.edited:  # not an answer to a dialog's step, nor a command run twice
            return [
                Reply(
                    ctx.t(
                        "I do not read a message again once it is edited: please send what you meant as a new message."
                    )
                )
            ]
        if ctx.incoming.unreadable:  # a sticker, a voice note: neither a command nor a step's answer
            return [
                Reply(
                    ctx.t(
                        "I read text and buttons, and a photo while an issue is raised; not this. Send /help for the commands you can use."
                    )
                )
            ]
        parsed = parse(text, ctx.incoming.is_group)
        if ctx.incoming.is_group:
            return [] if parsed is None else self._in_group(ctx, parsed)
        state = dialog.load(ctx)
        if state is not None:
            # a vote keyword leaves too: dialog data never holds the arguments of a vote
            leaving = (
                text.startswith("/")
                or text in CANCEL.aliases
                or (text.split(maxsplit=1) or [""])[0] in VOTE_WORDS
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
            if ctx.incoming.photo is not None:
                return [Reply(ctx.t(dialog.PHOTO_NOT_HERE))]
            if not text:
                return []
            return [Reply(ctx.t("I did not understand that. Send /help for the commands you can use."))]
        return self._run(ctx, parsed)

    def _in_group(self, ctx: Ctx, parsed: Parsed) -> list[Reply]:
        """In a group: commands only (others' are left to other bots). What needs a dialog or privacy
        is answered with a pointer to the private chat; a group not bound to a scope yet answers
        only what binds it."""
        command = parsed.command
        if command is None:
            return []
        if ctx.group is None and command.name not in UNBOUND_GROUP:
            return [
                Reply(
                    ctx.t(
                        "This group is not bound to a scope yet: a building leader, grid worker or committee member can bind it with /linkgroup."
                    )
                )
            ]
        if ctx.group is not None:
            groups.back(ctx.session, ctx.group, ctx.now)
        if command.private:
            return [private_pointer(ctx, command.name, parsed.args)]
        if command.name == "start" and parsed.args:  # what a deep link starts, it starts in private
            if parsed.args.split("_", 1)[0] == "join":
                return [private_pointer(ctx, "join")]
            start = parsed.args if _DEEP_LINK.match(parsed.args) else "help"
            return [replace(private_pointer(ctx, "start"), start=start)]
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
        if ctx.incoming.spoken and command.name in spoken.CONFIRMED:  # misheard, it would count wrongly
            word = command.aliases[0] if command.aliases else f"/{command.name}"
            return spoken.confirm(ctx, f"{word} {parsed.args}".strip())
        return command.run(ctx, parsed.args)
