"""Wiring: the database, the clock, the dispatcher and the sender, for every process."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from sqlalchemy.orm import Session

from bot.config import Config
from flows import digest, due, outbox, settings
from flows.clock import Clock
from handlers import format as fmt
from handlers.context import locale_of, person_of
from handlers.dispatch import Dispatcher
from locales import Translator
from storage.db import Database
from storage.migrate import require_current
from storage.models import Account, Issue, Poll
from storage.seal import BallotKey


class App:
    def __init__(self, config: Config, clock: Clock | None = None, db: Database | None = None) -> None:
        self.config = config
        self.db = db or Database(config.database_url)
        require_current(self.db.engine)
        self.clock = clock or Clock()
        self.key = BallotKey(config.ballot_key, config.ballot_key_file)
        self.dispatcher = Dispatcher(self.db, self.clock, self.key, config.locale, config.timezone)

    def render(self, session: Session, account: Account, msgid: str, params: dict) -> str:
        """An outbox message in its reader's language, decided when it is sent; a poll's result
        (a `poll` parameter) comes with its count and bars, in the same language."""
        t = Translator(locale_of(account, person_of(session, account), self.config.locale))
        text = fmt.message(t, msgid, params)
        if "digest_start" in params:
            return "\n".join([text, *self._digest(session, account, t, params)])
        poll = session.get(Poll, params["poll"]) if "poll" in params else None
        if poll is None:
            return text
        issue = session.get(Issue, poll.issue_id)
        assert issue is not None
        tz = str(settings.get(session, issue.community_id, "timezone", self.config.timezone))
        return "\n".join([text, *fmt.poll_lines(session, t, issue, poll, tz)])

    def _digest(self, session: Session, account: Account, t: Translator, params: dict) -> list[str]:
        reader = person_of(session, account)
        if reader is None:
            return []
        start, end = (
            datetime.fromisoformat(params["digest_start"]),
            datetime.fromisoformat(params["digest_end"]),
        )
        tz = str(settings.get(session, reader.community_id, "timezone", self.config.timezone))
        return fmt.digest_lines(session, t, digest.collect(session, reader, start, end), tz)

    def run_due(self) -> int:
        """Everything that fell due by the clock's now: deadlines, reminders, verdicts."""
        return due.run_due(self.db, self.clock.now(), self.key, self.config.timezone)

    def deliver(
        self, senders: Mapping[str, outbox.Sender], stopping: Callable[[], bool] = lambda: False
    ) -> int:
        return outbox.deliver_due(self.db, self.clock.now, senders, self.render, stopping)
