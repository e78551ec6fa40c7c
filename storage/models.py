"""The schema: the register (scopes, households, people, accounts), issues and their record.

Integrity lives here: one support per person per issue, one binding per channel account,
one report per person per comment, one household per room of a building.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy import false as sa_false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

LEVELS = ("community", "area", "grid", "building")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Scope(Base):
    """One node of community → area → grid → building."""

    __tablename__ = "scopes"
    __table_args__ = (UniqueConstraint("parent_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("scopes.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("scopes.id"), index=True)
    level: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    # the full path, e.g. 梧桐社区/东片区/东一网格/1栋 — ancestors are its prefixes
    path: Mapped[str] = mapped_column(String(500), unique=True)
    # households under this scope with someone living there: kept by the register import,
    # read by every support (the threshold), so not counted again each time
    households: Mapped[int] = mapped_column(Integer, default=0)

    parent: Mapped[Scope | None] = relationship(remote_side="Scope.id", foreign_keys=[parent_id])


class Household(Base):
    """A room of a building (户)."""

    __tablename__ = "households"
    __table_args__ = (UniqueConstraint("building_id", "room"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("scopes.id"), index=True)
    room: Mapped[str] = mapped_column(String(32))

    building: Mapped[Scope] = relationship()


class Person(Base):
    """A person in the register; `duty_scope` is the deepest scope of their register row."""

    __tablename__ = "people"
    __table_args__ = (
        UniqueConstraint("community_id", "register_key"),
        # a community's people, and its namesakes (said with each message to them) found by name
        Index("ix_people_community_id_name", "community_id", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("scopes.id"))
    # (building, room, name) of the register row, joined: how a re-import finds the person
    register_key: Mapped[str] = mapped_column(String(300))
    name: Mapped[str] = mapped_column(String(100), index=True)
    roles: Mapped[str] = mapped_column(String(100))
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"), index=True)
    duty_scope_id: Mapped[int] = mapped_column(ForeignKey("scopes.id"))
    moved_out: Mapped[bool] = mapped_column(Boolean, default=False)
    locale: Mapped[str | None] = mapped_column(String(8))
    # a resident who asked for the weekly digest of their scopes (/digest on)
    digest: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())

    household: Mapped[Household | None] = relationship()
    duty_scope: Mapped[Scope] = relationship(foreign_keys=[duty_scope_id])
    community: Mapped[Scope] = relationship(foreign_keys=[community_id])


class Account(Base):
    """A chat account on one channel; bound to at most one person."""

    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    locale: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # when the person last wrote from it (kept to the hour, and on every change of account): the
    # bot reaches a person through the account they used last that can be reached now
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # the platform refused to deliver to it (the person blocked the bot): messages are held until
    # they write again
    blocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # a chat window, on a platform that has them (WeChat's customer-service messages): the bot may
    # send on its own until `window_until`, `window_left` messages more; None: no such limit
    window_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    window_left: Mapped[int | None] = mapped_column(Integer)

    person: Mapped[Person | None] = relationship()


class Group(Base):
    """A group chat bound to a scope (`/linkgroup`): what the bot announces in the scope goes there.
    One group, one scope; a scope has at most one group on each channel."""

    __tablename__ = "groups"
    __table_args__ = (
        UniqueConstraint("channel", "chat_id"),
        Index(
            "uq_groups_bound_scope",
            "scope_id",
            "channel",
            unique=True,
            sqlite_where=text("unbound_at IS NULL"),
            postgresql_where=text("unbound_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    # the platform's id of the chat; a WeCom group robot's webhook URL (its key a secret: masked
    # wherever it is shown)
    chat_id: Mapped[str] = mapped_column(String(512))
    community_id: Mapped[int] = mapped_column(ForeignKey("scopes.id"), index=True)
    scope_id: Mapped[int] = mapped_column(ForeignKey("scopes.id"))
    title: Mapped[str | None] = mapped_column(String(200))
    bound_by: Mapped[int | None] = mapped_column(ForeignKey("people.id"))  # None: the operator (a robot)
    bound_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # undone by /unlinkgroup (the row stays: what was sent to the group refers to it)
    unbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # the platform refused to deliver (the bot was removed): messages are held until it is back
    blocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # a robot set to take WeCom Markdown (members on personal WeChat may not see it: plain text
    # by default)
    markdown: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())

    scope: Mapped[Scope] = relationship(foreign_keys=[scope_id])


class HandledUpdate(Base):
    """A platform update handled once: its key is recorded in the transaction that handles it, so
    a repeat (a webhook retried, a second worker) finds it and is ignored."""

    __tablename__ = "handled_updates"

    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    handled_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class PlatformToken(Base):
    """A platform's access token (WeChat's), shared by every process: fetched by one, under this
    row's lock, and used by all until it is due to be refreshed."""

    __tablename__ = "platform_tokens"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Invite(Base):
    __tablename__ = "invites"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    used_by_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)

    person: Mapped[Person] = relationship()


class Setting(Base):
    """A community's rule that differs from the default (flows/settings.py lists them)."""

    __tablename__ = "settings"
    __table_args__ = (  # two communities never share an address on the public board
        Index(
            "uq_settings_slug",
            "value",
            unique=True,
            sqlite_where=text("key = 'slug' AND value <> ''"),
            postgresql_where=text("key = 'slug' AND value <> ''"),
        ),
    )

    community_id: Mapped[int] = mapped_column(ForeignKey("scopes.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)  # a privacy notice is a paragraph


class Issue(Base):
    __tablename__ = "issues"

    id: Mapped[int] = mapped_column(primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("scopes.id"), index=True)
    scope_id: Mapped[int] = mapped_column(ForeignKey("scopes.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    title: Mapped[str] = mapped_column(String(100))
    details: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    major: Mapped[bool] = mapped_column(Boolean, default=False)
    category: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    support_deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("issues.id"))
    referred_to: Mapped[str | None] = mapped_column(String(100))
    keyword_count: Mapped[int] = mapped_column(Integer, default=0)
    # how many times the issue was done: the ratings of the latest round give the verdict
    rating_round: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    scope: Mapped[Scope] = relationship(foreign_keys=[scope_id])
    author: Mapped[Person] = relationship()


class IssuePhoto(Base):
    """The photo a resident sent with an issue, its bytes kept here (a platform's file id is good
    for one bot only, and the board and WeChat must show it too)."""

    __tablename__ = "issue_photos"

    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    mime: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IssueKeyword(Base):
    """The inverted index of the duplicate search (flows/textsense.py)."""

    __tablename__ = "issue_keywords"

    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id"), primary_key=True)
    word: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class Transition(Base):
    __tablename__ = "transitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class Support(Base):
    __tablename__ = "supports"
    __table_args__ = (UniqueConstraint("issue_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("households.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Comment(Base):
    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # visible → hidden (reports) → kept | removed (committee review)
    state: Mapped[str] = mapped_column(String(16), default="visible")

    person: Mapped[Person] = relationship()


class CommentReport(Base):
    __tablename__ = "comment_reports"
    __table_args__ = (UniqueConstraint("comment_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("comments.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DialogState(Base):
    """Where an account is in a guided dialog; kept in the database so a restart resumes it."""

    __tablename__ = "dialog_states"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    flow: Mapped[str] = mapped_column(String(32))
    step: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


# as each database's planner must find it in the query (`Outbox.live.is_(True)`, a vote message sent)
LIVE_SQLITE = "live IS 1 AND sent_ref IS NOT NULL"
LIVE_POSTGRESQL = "live IS true AND sent_ref IS NOT NULL"


class Outbox(Base):
    """A message the bot sends on its own, written in the transaction of its cause, addressed to a
    person or a bound group; the account is chosen when it is sent."""

    __tablename__ = "outbox"
    __table_args__ = (
        # only the messages still waiting: the index does not grow with all that was ever sent
        Index(
            "ix_outbox_waiting",
            "next_attempt_at",
            sqlite_where=text("sent_at IS NULL AND failed_at IS NULL AND held_at IS NULL"),
            postgresql_where=text("sent_at IS NULL AND failed_at IS NULL AND held_at IS NULL"),
        ),
        Index(
            "ix_outbox_held",
            "person_id",
            "group_id",
            sqlite_where=text("held_at IS NOT NULL"),
            postgresql_where=text("held_at IS NOT NULL"),
        ),
        # the groups' vote messages kept current (looked for after each delivery): not the whole outbox
        Index(
            "ix_outbox_live",
            "id",
            sqlite_where=text(LIVE_SQLITE),
            postgresql_where=text(LIVE_POSTGRESQL),
        ),
        CheckConstraint("(person_id IS NULL) <> (group_id IS NULL)", name="one_target"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("groups.id"), index=True)
    # the account it went to (or was last tried on), chosen when it was sent
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    # a message id and its parameters: rendered in the reader's language when it is sent
    msgid: Mapped[str] = mapped_column(Text)
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    # what makes it worth sending (`poll:7`, `item:3`): once that has passed, it is dropped
    reason: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # no account of the person can take it now (blocked, a window closed): waits for them
    held_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(String(500))
    # the text as first rendered (a retry sends the same words) and how many of its parts are out
    rendered: Mapped[str | None] = mapped_column(Text)
    parts_sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # the platform's id of the message sent, where a later edit needs it (a group's vote message)
    sent_ref: Mapped[str | None] = mapped_column(String(64))
    # a group's vote message, kept current by edits: when it was last edited, and what it showed
    live: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    shown: Mapped[str | None] = mapped_column(Text)

    account: Mapped[Account | None] = relationship()


class AuditChain(Base):
    """The head of one audit chain: one per community, one for rows of no community, and the
    frozen chain of everything appended before migration 0005. An append locks its chain's row,
    so appends to one chain are serialised and chains never wait for each other."""

    __tablename__ = "audit_chains"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # community | none | frozen
    community_id: Mapped[int | None] = mapped_column(ForeignKey("scopes.id"), unique=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)  # rows in the chain
    hash: Mapped[str] = mapped_column(String(64))  # the last row's hash (the origin while it has none)
    # the prev_hash of its first row: the frozen chain's head when this chain began
    origin: Mapped[str] = mapped_column(String(64))


class AuditLog(Base):
    """One state change, the `seq`-th of its chain; `hash` = sha256(prev_hash + canonical JSON of
    the row's content). Who, what, when: for a secret ballot only that someone took part."""

    __tablename__ = "audit_log"
    __table_args__ = (UniqueConstraint("chain_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chain_id: Mapped[int] = mapped_column(ForeignKey("audit_chains.id"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    community_id: Mapped[int | None] = mapped_column(ForeignKey("scopes.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    action: Mapped[str] = mapped_column(String(32))
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("issues.id"), index=True)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), index=True)  # a hash a resident holds is looked up


class AuditCheck(Base):
    """The last verification of a community's chain (by the clock, every hour), shown on the public
    board: walking a long chain at every page view would be slow, and the result is the same."""

    __tablename__ = "audit_checks"

    community_id: Mapped[int] = mapped_column(ForeignKey("scopes.id"), primary_key=True)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rows: Mapped[int] = mapped_column(Integer)  # rows walked
    broken: Mapped[int | None] = mapped_column(Integer)  # the place of the first row that does not hold
    reason: Mapped[str] = mapped_column(String(100), default="")


class Poll(Base):
    """A bot-managed vote on an issue. Its rules and eligible units are fixed when it opens."""

    __tablename__ = "polls"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id"), index=True)
    scope_id: Mapped[int] = mapped_column(ForeignKey("scopes.id"))
    opener_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    kind: Mapped[str] = mapped_column(String(16))  # approve | single | multiple
    max_choices: Mapped[int] = mapped_column(Integer, default=1)
    unit: Mapped[str] = mapped_column(String(16))  # person | household
    secret: Mapped[bool] = mapped_column(Boolean, default=False)
    major: Mapped[bool] = mapped_column(Boolean, default=False)
    # the community's counting rules when it opened, e.g. {"quorum": ">1/2", "pass": ">1/2"}
    rules: Mapped[dict] = mapped_column(JSON, default=dict)
    opens_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    eligible: Mapped[int] = mapped_column(Integer, default=0)
    turnout: Mapped[int | None] = mapped_column(Integer)
    quorum_met: Mapped[bool | None] = mapped_column(Boolean)
    outcome: Mapped[str | None] = mapped_column(String(16))
    # a secret poll's running tallies, sealed with the ballot key (storage/seal.py) and rewritten
    # by every ballot until the close, which writes the totals to every option row and clears it
    sealed: Mapped[str | None] = mapped_column(Text)


class PollOption(Base):
    """A choice; `votes` is its count once the poll closed (a secret poll's running tally is sealed
    in `Poll.sealed`, an open poll's is counted from its ballots)."""

    __tablename__ = "poll_options"
    __table_args__ = (UniqueConstraint("poll_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(100))
    votes: Mapped[int] = mapped_column(Integer, default=0)
    adopted: Mapped[bool] = mapped_column(Boolean, default=False)


class Eligible(Base):
    """A unit (a person, or a household) that may vote in a poll: fixed when it opens."""

    __tablename__ = "eligible"

    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class Ballot(Base):
    """An open poll's ballot: one per unit, changeable by its voter until the close."""

    __tablename__ = "ballots"
    # also the index of the poll's ballots (its first column): no other is written with each ballot
    __table_args__ = (UniqueConstraint("poll_id", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id"))
    unit_id: Mapped[int] = mapped_column(Integer)
    voter_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    proxy_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    choices: Mapped[list] = mapped_column(JSON)
    cast_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Participation(Base):
    """That a unit took part in a secret poll, and nothing of what it chose."""

    __tablename__ = "participations"
    __table_args__ = (UniqueConstraint("poll_id", "unit_id"),)  # the poll's index too, as for ballots

    id: Mapped[int] = mapped_column(primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id"))
    unit_id: Mapped[int] = mapped_column(Integer)
    voter_id: Mapped[int] = mapped_column(ForeignKey("people.id"))


class ActionItem(Base):
    """A task that carries out a decision (居民办): an owner, a due time, progress."""

    __tablename__ = "action_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id"), index=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    creator_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    title: Mapped[str] = mapped_column(String(100))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    progress: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    owner: Mapped[Person] = relationship(foreign_keys=[owner_id])


class ItemUpdate(Base):
    __tablename__ = "item_updates"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("action_items.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    progress: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class Rating(Base):
    """Satisfaction (1–5) with a done issue; `round` counts the times the issue was done."""

    __tablename__ = "ratings"
    __table_args__ = (UniqueConstraint("issue_id", "round", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    score: Mapped[int] = mapped_column(Integer)
    why: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class DueWork(Base):
    """A deadline or reminder: the database is the truth for time. `key` makes each one unique
    (two clocks, or a restart, cannot schedule it twice); `fired_at` is set by the one run that
    claims it, in the same transaction as what it does."""

    __tablename__ = "due_work"
    # only the rows not yet done: the index does not grow with all that ever fell due
    __table_args__ = (
        Index(
            "ix_due_work_waiting",
            "due_at",
            sqlite_where=text("fired_at IS NULL"),
            postgresql_where=text("fired_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
