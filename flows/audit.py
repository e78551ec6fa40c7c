"""The community's record of its own small powers (小微权力): an append-only, hash-chained log.

Each row's hash covers the previous row's hash and the row's content, so changing or
deleting any row breaks every hash after it. Appends lock the single head row, which
serialises them across processes and workers.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.i18n import N_
from storage.models import AuditHead, AuditLog

GENESIS = "0" * 64


_HASHED = ("id", "at", "community_id", "actor_id", "action", "issue_id", "detail")


def _digest(prev_hash: str, row: AuditLog | dict) -> str:
    """sha256 of the previous hash and the row's content (a stored row, or the values about to be)."""
    values = row if isinstance(row, dict) else {k: getattr(row, k) for k in _HASHED}
    content = {k: values[k] for k in _HASHED} | {"at": values["at"].isoformat()}
    canonical = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


# built once, and on the tables (Core): building them and the ORM's bookkeeping cost more than the SQL
_HEAD = select(AuditHead.last_id, AuditHead.hash).where(AuditHead.id == 1).with_for_update()
_INSERT = AuditLog.__table__.insert()
_ADVANCE = AuditHead.__table__.update().where(AuditHead.__table__.c.id == 1)


def append(
    session: Session,
    *,
    at: datetime,
    action: str,
    community_id: int | None,
    actor_id: int | None = None,
    issue_id: int | None = None,
    detail: dict | None = None,
) -> int:
    """Append a row under the head row's lock; its id. Core statements: no unit of work to flush."""
    conn = session.connection()  # Core statements straight on the connection: no ORM round
    head = conn.execute(_HEAD).one_or_none()
    if head is None:  # the first migration makes it; without it the chain cannot be kept
        raise RuntimeError("the audit_head row is missing: the database was not made by `yishi db upgrade`")
    last_id, prev_hash = head
    row = {
        "id": last_id + 1,
        # hashed as it will read back: UTC, to the second (a local time would not verify)
        "at": at.astimezone(UTC).replace(microsecond=0),
        "community_id": community_id,
        "actor_id": actor_id,
        "action": action,
        "issue_id": issue_id,
        "detail": detail or {},
        "prev_hash": prev_hash,
    }
    row["hash"] = _digest(prev_hash, row)
    conn.execute(_INSERT, row)
    conn.execute(_ADVANCE, {"last_id": row["id"], "hash": row["hash"]})
    return row["id"]


def head_hash(session: Session) -> str:
    return session.scalar(select(AuditHead.hash).where(AuditHead.id == 1)) or GENESIS


@dataclass(frozen=True)
class Verdict:
    rows: int
    broken_id: int | None
    reason: str = ""


def verify(session: Session) -> Verdict:
    """Walk the chain in order; name the first row whose link or content does not hold."""
    prev, count, expected_id = GENESIS, 0, 1
    for row in session.scalars(select(AuditLog).order_by(AuditLog.id)).yield_per(1000):
        count += 1
        if row.id != expected_id:
            return Verdict(count, expected_id, N_("a row is missing"))
        if row.prev_hash != prev:
            return Verdict(count, row.id, N_("its link to the previous row does not match"))
        if _digest(prev, row) != row.hash:
            return Verdict(count, row.id, N_("its content does not match its hash"))
        prev, expected_id = row.hash, row.id + 1
    head = session.get(AuditHead, 1)
    if head is not None and (head.last_id != expected_id - 1 or head.hash != prev):
        return Verdict(count, expected_id, N_("rows after it are missing"))
    return Verdict(count, None)
