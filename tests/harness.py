"""A test channel in the manner of errbot's TestBot and Zulip's verify_dialog.

It is the console channel itself, writing to a buffer: a test speaks as a named person
of the register, types a line and reads what came back — the reply to the speaker and
the `[→ NAME]` lines of what the bot sent to others.
"""

from __future__ import annotations

import io
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import uvicorn
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from bot.app import App
from bot.channels.console import Console
from bot.config import Config
from flows import register
from flows.clock import FixedClock
from storage.db import Database
from storage.models import Account, Base, Issue, Outbox
from storage.seal import BallotKey, new_key

Expected = str | Sequence[str]

YISHI = str(Path(sys.executable).with_name("yishi"))  # the command line of this environment
REGISTER = Path(__file__).parent / "data" / "register.csv"
BALLOT_KEY = new_key()  # the tests' YISHI_BALLOT_KEY: no key file is made where they run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def http_fake(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A fake outside service's HTTP server on 127.0.0.1, in a thread; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serving(app: App, config: Config) -> Iterator[str]:
    """`yishi serve`'s site (`bot.web`) on uvicorn in a thread of the test, lifespan and all; its URL."""
    from bot import web

    server = uvicorn.Server(
        uvicorn.Config(web.create(config, app), host="127.0.0.1", port=free_port(), log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the web process did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(30)


def ballot_key() -> BallotKey:
    return BallotKey(BALLOT_KEY)


class TestBot:
    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, db: Database, start: datetime, locale: str = "zh_CN") -> None:
        self.db = db
        self.clock = FixedClock(start)
        self.app = App(
            Config(database_url=db.url, locale=locale, ballot_key=BALLOT_KEY), clock=self.clock, db=db
        )
        self.out = io.StringIO()
        self.console = Console(self.app, out=self.out)

    def say(self, text: str, as_: str | None = None) -> str:
        if as_ is not None:
            self.say(f"/as {as_}")
        start = len(self.out.getvalue())
        self.console.line(text)
        return self.out.getvalue()[start:].rstrip("\n")

    def press(self, number: int, as_: str | None = None) -> str:
        """Press the button `number` of the last message with buttons in the chat spoken in."""
        return self.say(f"/press {number}", as_=as_)

    def in_group(self, name: str, as_: str | None = None) -> str:
        """Speak in the group chat `name` from now on (`""`: the private chat again)."""
        return self.say(f"/in {name}".strip(), as_=as_)

    def raise_issue(self, title: str, details: str = "详情。", scope: str = "1") -> str:
        """Raise an issue through the whole dialog as the current speaker, publishing it; the last reply."""
        reply = ""
        for line in ("/raise", title, details, scope, "yes"):
            reply = self.say(line)
        return reply

    def verify_dialog(self, turns: Sequence[tuple[str, Expected]]) -> None:
        """Each (said, expected): every expected fragment is in the reply to what was said."""
        transcript = []
        for said, expected in turns:
            reply = self.say(said)
            transcript.append(f"> {said}\n{reply}")
            for fragment in [expected] if isinstance(expected, str) else expected:
                assert fragment in reply, f"expected {fragment!r} in the reply to {said!r}:\n" + "\n".join(
                    transcript
                )

    def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)

    def issue(self, issue_id: int) -> Issue:
        with self.db.transaction() as session:
            issue = session.get(Issue, issue_id, options=[joinedload(Issue.scope), joinedload(Issue.author)])
            assert issue is not None
            return issue

    def snapshot(self) -> dict[str, list[tuple]]:
        """Every row of every table: compare two snapshots to prove nothing changed."""
        with self.db.transaction() as session:
            return {
                t.name: sorted(map(tuple, session.execute(select(t)).all()), key=repr)
                for t in Base.metadata.sorted_tables
            }

    def count(self, model: type) -> int:
        with self.db.transaction() as session:
            return session.scalar(select(func.count()).select_from(model)) or 0


def comments_on_another_channel(bot: TestBot, channel: str, external_id: str = "person:1") -> None:
    """Three comments by others on 欧阳明's issue, once his account has moved to `channel`
    (which the console does not serve): three messages waiting for him there."""
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运", "停了三次。")
    with bot.db.transaction() as session:
        session.execute(Outbox.__table__.delete())
        for account in session.scalars(select(Account).where(Account.external_id == "person:1")):
            account.channel, account.external_id = channel, external_id
    for who, text in (("李伟@1栋-102", "一"), ("王芳", "二"), ("张强", "三")):
        bot.say(f"/comment 1 {text}", as_=who)


def raised_twenty_days_ago(db: Database) -> TestBot:
    """The test register and one issue raised twenty days ago: its support window has ended
    while nothing ran, so an `expire` is due now, by the real clock."""
    bot = TestBot(db, datetime.now(UTC) - timedelta(days=20))
    with db.transaction() as session:
        register.import_file(session, REGISTER.read_bytes(), bot.clock.now())
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运", "停了三次。")
    return bot
