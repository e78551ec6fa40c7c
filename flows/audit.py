"""The community's record of its own small powers (小微权力): append-only, hash-chained logs.

Each community has its own chain, rows that belong to no community one more, and what was
appended before migration 0005 stands as it was in a frozen chain. A row's hash covers the
previous row's hash and the row's content, so changing or deleting a row breaks every link
after it; every new chain starts from the frozen chain's head.

`append` collects a row with the transaction. The rows are written when it commits, as its
last write, under the lock of their chain's head row: appends to one chain are serialised, but
only for the commit, so a large fan-out (a vote's notifications to 3,000 residents) holds no
chain lock while it writes, and communities never wait for each other. A savepoint rolled back
takes its rows with it. The chain lock orders nothing else: a rule that needs transactions to
take turns takes a lock of its own (`storage.rows.locked`) and says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Insert, Text, bindparam, cast, event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.sql import ColumnElement

from locales import N_
from storage.models import AuditChain, AuditCheck, AuditLog, Scope
from storage.prepared import Prepared
from storage.rows import insert_new, locked, one_writer

log = logging.getLogger("yishi.audit")

GENESIS = "0" * 64
_PENDING = "audit rows"

# the frozen chain's rows hash their global id; every later row its chain and its place in it
_HASHED_FROZEN = ("id", "at", "community_id", "actor_id", "action", "issue_id", "detail")
_HASHED = ("community_id", "seq", "at", "actor_id", "action", "issue_id", "detail")


def _canonical(row: AuditLog | dict, hashed: tuple[str, ...] = _HASHED) -> str:
    """The row's content as hashed: JSON of the hashed fields, keys sorted, no spaces."""
    values = row if isinstance(row, dict) else {k: getattr(row, k) for k in hashed}
    content = {k: values[k] for k in hashed} | {"at": values["at"].isoformat()}
    return json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _digest(prev_hash: str, row: AuditLog | dict, hashed: tuple[str, ...] = _HASHED) -> str:
    """sha256 of the previous hash and the row's content (a stored row, or the values about to be)."""
    return hashlib.sha256((prev_hash + _canonical(row, hashed)).encode()).hexdigest()


def append(
    session: Session,
    *,
    at: datetime,
    action: str,
    community_id: int | None,
    actor_id: int | None = None,
    issue_id: int | None = None,
    detail: dict | None = None,
) -> None:
    """Add a row to the community's chain when the transaction commits."""
    row = {
        # hashed as it will read back: UTC, to the second (a local time would not verify)
        "at": at.astimezone(UTC).replace(microsecond=0),
        "community_id": community_id,
        "actor_id": actor_id,
        "action": action,
        "issue_id": issue_id,
        "detail": detail or {},
    }
    if session.get_transaction() is None:
        session.connection()  # begun now: a rollback must find the rows it takes with it
    here = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append((here, row))


def _inside(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_commit")
def _unwritten(session: Session) -> None:
    """Rows still pending once the outer transaction has committed were lost: a commit that
    bypassed `_write` (see there). Said loudly, and not carried into the next transaction."""
    if not session.in_nested_transaction() and session.info.get(_PENDING):
        rows = session.info.pop(_PENDING)
        log.error("%d audit rows were not written: their transaction committed without them", len(rows))


@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, previous_transaction: SessionTransaction) -> None:
    """Rows appended inside a rolled-back savepoint (or transaction) are not written."""
    pending = session.info.get(_PENDING)
    if pending:
        pending[:] = [(t, row) for t, row in pending if not _inside(t, previous_transaction)]


# built once, on the tables (Core): building them and the ORM's bookkeeping cost more than the SQL
_HEAD_COLUMNS = select(AuditChain.id, AuditChain.seq, AuditChain.hash)
_COMMUNITY_HEAD = locked(_HEAD_COLUMNS.where(AuditChain.community_id == bindparam("community")))
_NONE_HEAD = locked(_HEAD_COLUMNS.where(AuditChain.kind == "none"))
_FROZEN_HEAD = select(AuditChain.hash).where(AuditChain.kind == "frozen")
_INSERT = Prepared(AuditLog.__table__.insert())
_HEADS = "audit heads"  # on a connection: {community id: (chain id, seq, hash)} as it last wrote them
# what the database says of a row that does not continue its chain (migration 0007's triggers)
BROKEN_LINK = "an audit row must continue its chain"


def _missing() -> RuntimeError:
    return RuntimeError("the audit chains are missing: the database was not made by `yishi db upgrade`")


def _make_chain(session: Session, community_id: int) -> None:
    """A community's first append makes its chain, starting from the frozen head."""
    origin = session.connection().execute(_FROZEN_HEAD).scalar()
    if origin is None:
        raise _missing()
    row = {"kind": "community", "community_id": community_id, "seq": 0, "hash": origin, "origin": origin}
    insert_new(session, AuditChain.__table__, row, ("community_id",))


def _locked_head(session: Session, community_id: int | None) -> tuple[int, int, str]:
    """(chain id, seq, hash) of the community's chain, locked until commit."""
    conn = session.connection()
    if community_id is None:
        head = conn.execute(_NONE_HEAD).first()
    else:
        head = conn.execute(_COMMUNITY_HEAD, {"community": community_id}).first()
        if head is None:
            _make_chain(session, community_id)
            head = conn.execute(_COMMUNITY_HEAD, {"community": community_id}).first()
    if head is None:
        raise _missing()
    return head[0], head[1], head[2]


@event.listens_for(Session, "before_commit")
def _write(session: Session) -> None:
    """The rows collected, written as the transaction's last write, chain by chain. A savepoint's
    commit writes nothing: its rows go with its transaction's. (SQLAlchemy also calls this hook
    when the outer transaction commits while a savepoint is open, and the rows would be lost:
    `storage.db.Database.transaction` refuses such a commit.)

    The database itself refuses a row that does not continue its chain, and makes each row
    inserted its chain's head (migration 0007): an append is an insert."""
    if session.in_nested_transaction() or not session.info.get(_PENDING):
        return
    session.flush()  # everything else first: the chain's lock is held for the commit alone
    by_chain: dict[int | None, list[dict]] = {}
    for _, row in session.info.pop(_PENDING):
        by_chain.setdefault(row["community_id"], []).append(row)
    append = _append_remembered if one_writer(session) else _append_in_sql
    # chains locked in one order: two transactions writing to the same two never deadlock
    for community_id in sorted(by_chain, key=lambda c: -1 if c is None else c):
        append(session, community_id, by_chain[community_id])


def _append_remembered(session: Session, community_id: int | None, rows: list[dict]) -> None:
    """Where one transaction writes at a time (SQLite), a connection remembers each head it wrote
    and inserts after it without reading it first. When another process (or a transaction undone
    after its append) moved the head, the database refuses the rows, and the head is read."""
    conn = session.connection()
    heads = conn.info.setdefault(_HEADS, {})
    known = heads.get(community_id)
    try:
        if known is None:
            raise LookupError  # not remembered: read it
        _chain(rows, *known)
        # refused at the first row or not at all: once it continues the chain, so do the rest
        _insert(session, rows)
        chain_id = known[0]
    except (LookupError, IntegrityError) as exc:
        if isinstance(exc, IntegrityError) and BROKEN_LINK not in str(exc.orig):
            raise
        chain_id, seq, prev = _locked_head(session, community_id)
        _chain(rows, chain_id, seq, prev)
        _insert(session, rows)
    heads[community_id] = (chain_id, rows[-1]["seq"], rows[-1]["hash"])


def _insert(session: Session, rows: list[dict]) -> None:
    for row in rows:
        _INSERT.rowcount(session, row)


def _chain(rows: list[dict], chain_id: int, seq: int, prev: str) -> None:
    """The rows numbered and hashed after (seq, prev)."""
    for row in rows:
        seq += 1
        row |= {"chain_id": chain_id, "seq": seq, "prev_hash": prev}
        row["hash"] = prev = _digest(prev, row)


def _appended_in_sql(where: ColumnElement[bool]) -> Insert:
    """One statement that appends one row (PostgreSQL): the head locked (waiting for another
    append to the chain to commit, then read as it is now) and the row inserted after it. The
    hash is `_digest`'s, worked out in SQL: the row's canonical JSON ends with its place
    (`"seq":N}`), so it is the previous hash, the JSON up to `"seq":` (the `prefix`, made in
    Python), the place, and `}`."""
    chains, log = AuditChain.__table__, AuditLog.__table__
    head = (
        select(chains.c.id, chains.c.seq, chains.c.hash)
        .where(where)
        .with_for_update(key_share=True)
        .cte("head")
    )
    seq = head.c.seq + 1
    canonical = head.c.hash + bindparam("prefix", type_=Text) + cast(seq, Text) + "}"
    digest = func.encode(func.sha256(func.convert_to(canonical, "UTF8")), "hex")
    columns = ("at", "community_id", "actor_id", "action", "issue_id", "detail")
    values = [bindparam(c, type_=log.c[c].type) for c in columns]
    return (
        log.insert()
        .from_select(
            ["chain_id", "seq", *columns, "prev_hash", "hash"],
            select(head.c.id, seq, *values, head.c.hash, digest),
        )
        .execution_options(preserve_rowcount=True)
    )


_APPEND_TO_COMMUNITY = _appended_in_sql(AuditChain.community_id == bindparam("chain_community"))
_APPEND_TO_NONE = _appended_in_sql(AuditChain.kind == "none")


def _append_in_sql(session: Session, community_id: int | None, rows: list[dict]) -> None:
    """Elsewhere (PostgreSQL), each row in one statement: nothing is read first."""
    conn = session.connection()
    statement = _APPEND_TO_NONE if community_id is None else _APPEND_TO_COMMUNITY
    for row in rows:
        canonical = _canonical(row | {"seq": 0})
        assert canonical.endswith('"seq":0}'), "the place must be the last key of the canonical JSON"
        values = row | {"prefix": canonical[: -len("0}")], "chain_community": community_id}
        if conn.execute(statement, values).rowcount == 1:
            continue
        if community_id is None:
            raise _missing()
        _make_chain(session, community_id)
        if conn.execute(statement, values).rowcount != 1:
            raise _missing()


# --- reading and verifying -----------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str


def head(session: Session, community_id: int) -> Head:
    """Where the community's chain stands (before its first row: the frozen head it starts from)."""
    found = session.execute(
        select(AuditChain.seq, AuditChain.hash).where(AuditChain.community_id == community_id)
    ).first()
    if found is not None:
        return Head(found[0], found[1])
    return Head(0, session.scalar(_FROZEN_HEAD) or GENESIS)


FROZEN_CHAIN = N_("the chain of before the per-community chains (frozen)")
NO_COMMUNITY = N_("rows of no community")


@dataclass(frozen=True)
class Verdict:
    """One chain checked: `name` is the community's name, or one of the two labels above."""

    name: str
    rows: int
    head: Head
    broken: int | None = None  # the place in the chain of the first row that does not hold
    reason: str = ""


def verify(session: Session, community_id: int | None = None) -> list[Verdict]:
    """Every chain (or only the community's), each walked in order; the first row of each whose
    place, link or content does not hold is named."""
    query = select(AuditChain).order_by(AuditChain.id)
    if community_id is not None:
        query = query.where(AuditChain.community_id == community_id)
    names = dict(session.execute(select(Scope.id, Scope.name).where(Scope.level == "community")).all())
    verdicts = []
    for chain in session.scalars(query).all():
        name = {"frozen": FROZEN_CHAIN, "none": NO_COMMUNITY}.get(chain.kind) or names.get(
            chain.community_id, str(chain.community_id)
        )
        verdicts.append(_walk(session, chain, name))
    if community_id is not None and not verdicts:  # nothing appended yet: it stands at its origin
        return [Verdict(names.get(community_id, str(community_id)), 0, head(session, community_id))]
    return verdicts


def _walk(session: Session, chain: AuditChain, name: str) -> Verdict:
    hashed = _HASHED_FROZEN if chain.kind == "frozen" else _HASHED
    expected_community = chain.community_id if chain.kind == "community" else None
    prev, count, place = chain.origin, 0, 1
    rows = select(AuditLog).where(AuditLog.chain_id == chain.id).order_by(AuditLog.seq)
    here = Head(chain.seq, chain.hash)
    for row in session.scalars(rows).yield_per(1000):
        count += 1
        if row.seq != place:
            return Verdict(name, count, here, place, N_("a row is missing"))
        if row.prev_hash != prev:
            return Verdict(name, count, here, row.seq, N_("its link to the previous row does not match"))
        wrong_chain = chain.kind != "frozen" and row.community_id != expected_community
        if wrong_chain or _digest(prev, row, hashed) != row.hash:
            return Verdict(name, count, here, row.seq, N_("its content does not match its hash"))
        prev, place = row.hash, row.seq + 1
    if chain.seq != place - 1 or chain.hash != prev:
        return Verdict(name, count, here, place, N_("rows after it are missing"))
    return Verdict(name, count, here)


# --- the public board's view of the chain ---------------------------------------------------------


def verdicts(session: Session) -> dict[int, Verdict]:
    """Each community's chain verified (in a reading transaction: a long walk holds up no writer)."""
    communities = session.scalars(select(Scope.id).where(Scope.level == "community")).all()
    return {community_id: verify(session, community_id)[0] for community_id in communities}


def record_checks(session: Session, found: dict[int, Verdict], at: datetime) -> None:
    """Keep the verdicts (`AuditCheck`): the public board shows the last one, with its time,
    instead of walking a long chain at every page view."""
    for community_id, verdict in found.items():
        values = {"checked_at": at, "rows": verdict.rows, "broken": verdict.broken, "reason": verdict.reason}
        # two clocks at once: each writes the verdict of its own walk, the later one last
        if not insert_new(
            session, AuditCheck.__table__, {"community_id": community_id, **values}, ("community_id",)
        ):
            session.execute(update(AuditCheck).where(AuditCheck.community_id == community_id).values(values))


def last_check(session: Session, community_id: int) -> AuditCheck | None:
    return session.get(AuditCheck, community_id)


@dataclass(frozen=True)
class Found:
    """A row of the community's record: its place in its chain and its time (what a resident
    holding its hash asks)."""

    seq: int
    at: datetime


def normal_hash(text: str) -> str:
    """A hash as a resident may type or paste it: spaces around, capital letters."""
    return text.strip().lower()


def find(session: Session, community_id: int, hash_: str) -> Found | None:
    """The community's row with this hash, in its chain or in the frozen one of before."""
    row = session.execute(
        select(AuditLog.seq, AuditLog.at).where(
            AuditLog.hash == normal_hash(hash_), AuditLog.community_id == community_id
        )
    ).first()
    return Found(*row) if row is not None else None


def closing_row(session: Session, issue_id: int, poll_id: int) -> tuple[Found, str] | None:
    """The row that recorded a poll's close (the issue's move to the vote's outcome), with its
    hash: printed on the notice, for a resident to look up."""
    rows = session.execute(
        select(AuditLog.seq, AuditLog.at, AuditLog.hash, AuditLog.detail)
        .where(AuditLog.issue_id == issue_id, AuditLog.action == "status")
        .order_by(AuditLog.id)
    ).all()
    for seq, at, hash_, detail in rows:
        closing = isinstance(detail, dict) and detail.get("from") == "voting"
        if closing and detail.get("poll") == poll_id:
            return Found(seq, at), hash_
    return None
