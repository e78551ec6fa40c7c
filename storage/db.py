"""Engine and sessions for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("yishi.db")
Listener = Callable[[str, datetime], None]


def normalise_url(url: str) -> str:
    """`postgres://` and `postgresql://` go through psycopg 3, the driver we install."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    """`hide_parameters`: no SQL log line or error message carries values (a secret ballot's choices)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # let SQLAlchemy issue BEGIN itself (below) instead of pysqlite's deferred one
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # type: ignore[no-untyped-def]
            # IMMEDIATE takes the write lock up front: two processes never deadlock on upgrade
            # (on the driver's connection itself: every message begins one); a reading transaction
            # (`Database.reading`) begins deferred and, reading only, never takes it
            reading = conn.get_execution_options().get(READING, False)
            conn.connection.dbapi_connection.execute("BEGIN" if reading else "BEGIN IMMEDIATE")

        return engine
    # no ping before each use: a connection the server dropped fails its first statement, and the
    # dispatcher handles that message once more on a new one (a ping is a round trip per message)
    return create_engine(url, hide_parameters=True)


READING = "yishi_reading"  # the execution option of a reading transaction
# threads that keep a connection of their own between transactions (`Database.transaction`): a few,
# so that the pool always has connections for every other thread
HELD = 4
_READ_ONLY = text("SET TRANSACTION READ ONLY")
_WAKE = "wake at"
# on PostgreSQL the hints also go to other processes (a web worker's commit wakes the clock)
WAKE_CHANNEL = "yishi_wake"
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def wake_at(session: Session, what: str, at: datetime) -> None:
    """Something this transaction writes falls due at `at` (`what`: "work" for a deadline or a
    reminder, "message" for a message to send): once it commits, the process's listeners are told
    (`Database.on_wake`), so that nobody has to poll the tables after every message to learn it."""
    wakes = session.info.setdefault(_WAKE, {})
    if what not in wakes or at < wakes[what]:
        wakes[what] = at


class Database:
    """An engine and its session factory; `transaction()` is the unit of work of one message.

    A connection taken from the pool and given back costs about as much as a ballot's SQL (the
    pool's checkout, reset and checkin, a new `Connection`): the first HELD threads to write (a
    dispatcher's, the console's, the clock's) keep theirs between transactions. A kept connection
    is idle between them (no transaction, no lock); one that was lost is made anew on its next use
    (SQLAlchemy's reconnect), and a thread that ended gives its connection back to the pool.
    """

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._wake: list[Callable[[str, datetime], None]] = []
        self._held: dict[threading.Thread, Connection] = {}
        self._holding = threading.Lock()
        self._lent: set[Connection] = set()  # kept connections in a transaction now
        self._stale: set[Connection] = set()  # kept connections made before a connection was lost

    def on_wake(self, listener: Listener) -> None:
        """`listener(what, at)` after each commit of a transaction that wrote something due at `at`."""
        self._wake.append(listener)

    @property
    def shared(self) -> bool:
        """Whether other processes may write (PostgreSQL): its wake-up hints are told to them too."""
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Commits when the block ends, rolls back if it raises. A savepoint still open then is a
        bug (what it holds would be committed past the hooks that run at commit): refused."""
        conn = self._lend()
        try:
            with self.sessions(bind=conn) if conn else self.sessions() as session, session.begin():
                yield session
                if session.in_nested_transaction():
                    raise RuntimeError(
                        "a savepoint is still open at commit: use `with session.begin_nested():`"
                    )
                wakes = session.info.pop(_WAKE, {})
                if wakes and self.shared:  # sent by PostgreSQL at commit, and only then
                    payload = json.dumps({what: at.isoformat() for what, at in wakes.items()})
                    session.execute(_NOTIFY, {"channel": WAKE_CHANNEL, "payload": payload})
        except DBAPIError as exc:
            if exc.connection_invalidated:  # the server went away: the other kept ones are gone too
                with self._holding:
                    self._stale.update(self._held.values())
            raise
        finally:
            if conn is not None:
                self._lent.discard(conn)
        for what, at in wakes.items():
            for listener in self._wake:
                listener(what, at)

    def _lend(self) -> Connection | None:
        """The thread's kept connection, if it has or may take one and it is not in use already (a
        transaction begun inside another of the same thread gets one of its own from the pool)."""
        thread = threading.current_thread()
        conn = self._held.get(thread)
        if conn is None or (conn in self._stale and conn not in self._lent):
            with self._holding:
                for old in [t for t, c in self._held.items() if not t.is_alive() or c is conn]:
                    gone = self._held.pop(old)
                    self._stale.discard(gone)
                    gone.close()  # back to the pool, which makes a connection older than a loss anew
                if len(self._held) >= HELD:
                    return None
                conn = self._held[thread] = self.engine.connect()
        if conn in self._lent:
            return None
        self._lent.add(conn)
        return conn

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A transaction that only reads (a page of the public board), rolled back at its end: on
        SQLite it never takes the write lock, so that readers never hold up the bot; PostgreSQL
        refuses any write in it."""
        with self.sessions() as session:
            session.connection(execution_options={READING: True})
            if self.shared:
                session.execute(_READ_ONLY)
            try:
                yield session
            finally:
                session.rollback()

    def listen(self, listener: Listener, stopping: threading.Event) -> None:
        """Tell `listener` of the hints other processes' commits send (PostgreSQL), until `stopping`
        is set; run in a thread of its own. A lost connection is made again: meanwhile the
        process's safety interval still finds what is due."""
        import psycopg  # the PostgreSQL driver: only where there is PostgreSQL

        conninfo = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not stopping.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {WAKE_CHANNEL}")
                    while not stopping.is_set():
                        for note in conn.notifies(timeout=1.0):
                            _told(listener, note.payload)
            except psycopg.Error as exc:
                log.warning("listening for wake-ups failed (%s); again in 5 s", exc)
                stopping.wait(5)

    def dispose(self) -> None:
        with self._holding:
            for conn in self._held.values():
                conn.close()
            self._held.clear()
            self._stale.clear()
        self.engine.dispose()


def _told(listener: Listener, payload: str) -> None:
    """One notification's hints; one that is not ours (someone else's NOTIFY) is left alone."""
    try:
        hints = {what: datetime.fromisoformat(at) for what, at in json.loads(payload).items()}
    except (ValueError, TypeError, AttributeError):
        log.warning("a wake-up notification that is not Yishi's was ignored: %.80r", payload)
        return
    for what, at in hints.items():
        listener(what, at)
