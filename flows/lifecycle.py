"""The lifecycle of an issue (议题): its statuses and the only transitions between them.

Every change of status goes through `move`, which checks the table, records the
transition for the public record and appends the audit row. The status is written only
if the row still holds the status the move started from: a flow that forgot to hold the
issue (`flows.issues.lock`) fails loudly instead of recording a transition twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from flows import audit
from storage.models import Issue, Transition

STATUSES = (
    "raised",
    "discussing",
    "voting",
    "passed",
    "rejected",
    "no_quorum",
    "acting",
    "done",
    "closed",
    "reopened",
    "expired",
    "withdrawn",
    "merged",
    "referred",
)

_ENDINGS = ("withdrawn", "merged", "referred")
ALLOWED: dict[str, frozenset[str]] = {
    "raised": frozenset({"discussing", "expired", *_ENDINGS}),
    "discussing": frozenset({"voting", *_ENDINGS}),
    "voting": frozenset({"passed", "rejected", "no_quorum"}),
    "passed": frozenset({"acting"}),
    "rejected": frozenset({"voting", *_ENDINGS}),
    "no_quorum": frozenset({"voting", *_ENDINGS}),
    "acting": frozenset({"done"}),
    "done": frozenset({"closed", "reopened"}),
    "reopened": frozenset({"acting"}),
    "closed": frozenset(),
    "expired": frozenset(),
    "withdrawn": frozenset(),
    "merged": frozenset(),
    "referred": frozenset(),
}

# statuses in which an issue still asks something of residents (listed by /issues, /my)
OPEN = frozenset(
    {"raised", "discussing", "voting", "passed", "rejected", "no_quorum", "acting", "done", "reopened"}
)
# statuses in which a new issue is "the same matter" to be supported instead of raised again
SIMILAR_CANDIDATES = frozenset({"raised", "discussing", "voting"})
# statuses from which an issue may still be withdrawn, merged, referred or escalated
BEFORE_VOTE = frozenset({"raised", "discussing", "rejected", "no_quorum"})
SUPPORTABLE = frozenset({"raised", "discussing"})
COMMENTABLE = frozenset({"raised", "discussing", "voting"})


_RECORD = Transition.__table__.insert()
_MOVE = (
    Issue.__table__.update()
    .where(Issue.__table__.c.id == bindparam("issue"), Issue.__table__.c.status == bindparam("before"))
    .values(status=bindparam("after"))
)


class IllegalTransition(RuntimeError):
    """A flow tried a move the lifecycle does not allow: a bug, not bad input."""


def can_move(issue: Issue, status: str) -> bool:
    return status in ALLOWED[issue.status]


def record_creation(session: Session, issue: Issue, at: datetime) -> None:
    session.connection().execute(_RECORD, {"issue_id": issue.id, "status": issue.status, "at": at})


def move(
    session: Session,
    issue: Issue,
    status: str,
    *,
    at: datetime,
    actor_id: int | None,
    detail: dict | None = None,
) -> None:
    if not can_move(issue, status):
        raise IllegalTransition(f"issue #{issue.id}: {issue.status} → {status}")
    before = issue.status
    conn = session.connection()
    if conn.execute(_MOVE, {"issue": issue.id, "before": before, "after": status}).rowcount != 1:
        raise IllegalTransition(f"issue #{issue.id} is no longer {before}: another transaction moved it")
    set_committed_value(issue, "status", status)
    conn.execute(_RECORD, {"issue_id": issue.id, "status": status, "at": at})
    audit.append(
        session,
        at=at,
        action="status",
        community_id=issue.community_id,
        actor_id=actor_id,
        issue_id=issue.id,
        detail={"from": before, "to": status, **(detail or {})},
    )
