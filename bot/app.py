"""Wiring: the database, the clock, the dispatcher and the sender, for every process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy.orm import Session

from bot.config import Config
from flows import audit, board, digest, due, outbox, schedule, settings, votes
from flows.clock import Clock
from flows.messages import Reply
from handlers import ballot
from handlers import format as fmt
from handlers.dispatch import Dispatcher
from locales import Translator
from storage.db import Database
from storage.migrate import require_current
from storage.models import Group, Issue, Person, Poll
from storage.seal import BallotKey

AUDIT_EVERY = timedelta(hours=1)  # how often the clock verifies the audit chains for the public board
SAFETY_SECONDS = 60  # work written by another process (a web worker, another clock) is seen this soon
POSTGRES_THREADS = 8  # dispatcher threads of a channel's edge, each with its connection from the pool


class App:
    def __init__(self, config: Config, clock: Clock | None = None, db: Database | None = None) -> None:
        self.config = config
        self.db = db or Database(config.database_url)
        require_current(self.db.engine)
        self.clock = clock or Clock()
        self.key = BallotKey(config.ballot_key, config.ballot_key_file)
        self.dispatcher = Dispatcher(self.db, self.clock, self.key, config.locale, config.timezone)
        self.planner = due.DigestPlanner()
        self.pacer = outbox.Pacer(self.clock.now)  # how often each chat may be sent to, by this process
        # when work and messages are next due, as this process knows it: its own commits bring them
        # forward (`woken`), a look at the tables after each step sets them, and it looks again at
        # least every SAFETY_SECONDS (for what other processes wrote)
        self.next: dict[str, datetime | None] = {"work": None, "message": None}
        self._looked: float | None = None  # time.monotonic() of the last look
        self._looked_for: frozenset[str] = frozenset()  # the channels whose messages it looked at
        self._told: dict[str, datetime] = {}  # what commits told during a step
        self._lock = threading.Lock()
        self._audited: datetime | None = None  # when this process last verified the chains
        self.db.on_wake(self.woken)

    def dispatch_pool(self) -> ThreadPoolExecutor:
        """The threads a channel's edge runs the (blocking) dispatcher in, off its event loop: one
        on SQLite, which has one writer; on PostgreSQL each thread has its connection."""
        threads = 1 if self.db.engine.dialect.name == "sqlite" else POSTGRES_THREADS
        return ThreadPoolExecutor(threads, thread_name_prefix="yishi-dispatch")

    def woken(self, what: str, at: datetime) -> None:
        """A transaction of this process wrote something due at `at`."""
        with self._lock:
            for known in (self.next, self._told):
                earlier = known.get(what)
                known[what] = at if earlier is None else min(earlier, at)

    @property
    def next_due(self) -> datetime | None:
        with self._lock:
            known = [at for at in self.next.values() if at is not None]
        return min(known) if known else None

    def _due(self, what: str, now: datetime) -> bool:
        at = self.next[what]
        return (
            self._looked is None
            or time.monotonic() - self._looked >= SAFETY_SECONDS
            or (at is not None and now >= at)
        )

    def due(self) -> bool:
        """Whether a step has something to do: work or a message due by the clock, or time to look."""
        now = self.clock.now()
        with self._lock:
            return self._due("work", now) or self._due("message", now)

    def step(
        self, senders: Mapping[str, outbox.Sender], stopping: Callable[[], bool] = lambda: False
    ) -> tuple[int, int]:
        """Due work, then delivery and the groups' vote messages, each only when due, then a look at
        when they are next due; (rows won, messages sent)."""
        now = self.clock.now()
        with self._lock:
            self._told = {}
            if frozenset(senders) != self._looked_for:  # what it knows is of other channels' messages
                self._looked = None
            work, messages = self._due("work", now), self._due("message", now)
            # what only delivery knows (a paced chat, a vote message's next edit) stays known until
            # it looks again
            later = [self.next["message"]]
        won = self.run_due() if work else 0
        if work:
            self.verify_audit()
        sent, looked_at = 0, None
        if messages or won:
            looked_at = self.clock.now()
            delivery = self.deliver(senders, stopping)
            sent, later = delivery.sent, [delivery.next_at]
        with self.db.transaction() as session:
            # what was due when the delivery looked was sent, held, or set aside until `later`
            due_next = schedule.next_due(session, senders, after=looked_at)
            found = dict(zip(("work", "message"), due_next, strict=True))
            if looked_at is not None:  # and, in the same look, the groups' vote messages kept current
                live_at = self.clock.now()
                live = outbox.live_messages(session, senders, live_at)
        if looked_at is not None:
            later.append(
                outbox.edit_live(self.db, self.clock.now, senders, self.render, self.pacer, live, live_at)
            )
        with self._lock:
            for what in ("work", "message"):
                extra = [self.planner.next] if what == "work" else later
                known = [at for at in (found[what], self._told.get(what), *extra) if at is not None]
                self.next[what] = min(known) if known else None
            self._looked, self._looked_for = time.monotonic(), frozenset(senders)
        return won, sent

    def render(self, session: Session, reader: outbox.Recipient, row: outbox.Row) -> Reply:
        """An outbox message in its reader's language, decided when it is sent; a poll's count and
        bars come with a message about a poll, and a group's vote message carries the ballot: a
        button per choice of an open vote, a pointer to the private chat for a secret one."""
        t = Translator(reader.locale or self.config.locale)
        text = fmt.message(t, row.msgid, row.params)
        link = self._link(session, reader, row.params)
        if "digest_start" in row.params:
            return Reply("\n".join([text, *self._digest(session, reader, t, row.params), *link]))
        poll = session.get(Poll, row.params["poll"]) if "poll" in row.params else None
        if poll is None:
            return Reply("\n".join([text, *link]))
        issue = session.get(Issue, poll.issue_id)
        assert issue is not None
        tz = str(settings.get(session, issue.community_id, "timezone", self.config.timezone))
        message = Reply("\n".join([text, *fmt.poll_lines(session, t, issue, poll, tz), *link]))
        if row.live and poll.closed_at is None:
            return ballot.in_group(t, poll, votes.options_of(session, poll), message)
        return message

    def _link(self, session: Session, reader: outbox.Recipient, params: dict) -> list[str]:
        """A group's message links to the public board (where YISHI_PUBLIC_URL says it is): to the
        issue it is about; a digest, a group's or a person's, to the community's page."""
        digest_ = "digest_start" in params
        if not self.config.public_url or reader.community_id is None or not (reader.is_group or digest_):
            return []
        slug = quote(board.slug(session, reader.community_id))
        issue = params.get("id") if not digest_ else None
        path = board.issue_path(slug, issue) if isinstance(issue, int) else f"/c/{slug}"
        return [self.config.public_url + path]

    def _digest(self, session: Session, reader: outbox.Recipient, t: Translator, params: dict) -> list[str]:
        """A person's digest of their scopes, or a group's of its scope."""
        start, end = (
            datetime.fromisoformat(params["digest_start"]),
            datetime.fromisoformat(params["digest_end"]),
        )
        group = session.get(Group, reader.group_id) if reader.group_id is not None else None
        person = session.get(Person, reader.person_id) if reader.person_id is not None else None
        if group is not None:
            found = digest.collect_for(session, group.scope, start, end)
        elif person is not None:
            found = digest.collect(session, person, start, end)
        else:
            return []
        tz = str(settings.get(session, reader.community_id or 0, "timezone", self.config.timezone))
        return fmt.digest_lines(session, t, found, tz)

    def run_due(self) -> int:
        """Everything that fell due by the clock's now: deadlines, reminders, verdicts."""
        return due.run_due(self.db, self.clock.now(), self.key, self.config.timezone, self.planner)

    def verify_audit(self) -> None:
        """Every AUDIT_EVERY, each community's chain verified and the verdict kept for the board."""
        now = self.clock.now()
        if self._audited is not None and now - self._audited < AUDIT_EVERY:
            return
        with self.db.reading() as session:
            found = audit.verdicts(session)
        with self.db.transaction() as session:
            audit.record_checks(session, found, now)
        self._audited = now

    def deliver(
        self, senders: Mapping[str, outbox.Sender], stopping: Callable[[], bool] = lambda: False
    ) -> outbox.Delivery:
        return outbox.deliver_due(self.db, self.clock.now, senders, self.render, self.pacer, stopping)
