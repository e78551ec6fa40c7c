"""Group chats bound to scopes (`/linkgroup`, `/unlinkgroup`): where the bot announces what
happens in a building, a grid or the whole community.

A building leader binds their building's group, a grid worker their grid's, the committee a
group for any scope of the community. One group, one scope; a scope has at most one group on
each channel. The channel may add its own check (on Telegram: the person is an admin of the
group), which arrives as `admin`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flows import audit, outbox, scopes
from flows.errors import Refused
from storage.models import Group, Outbox, Person, Scope
from storage.rows import locked

BINDERS = ("building_leader", "grid_worker", "committee")


def bound(session: Session, channel: str, chat_id: str) -> Group | None:
    """The group's binding, if it has one."""
    return session.scalar(
        select(Group).where(Group.channel == channel, Group.chat_id == chat_id, Group.unbound_at.is_(None))
    )


def _scope_named(session: Session, person: Person, name: str) -> Scope:
    """A scope of the person's community by its full path, or by its name where that is unique."""
    tree = session.scalars(
        select(Scope).where((Scope.id == person.community_id) | (Scope.community_id == person.community_id))
    ).all()
    found = [s for s in tree if s.path == name] or [s for s in tree if s.name == name]
    if len(found) != 1:
        if found:
            raise Refused(
                "Several scopes are called {name}: give the full path, e.g. {path}.",
                name=name,
                path=found[0].path,
            )
        raise Refused("There is no scope {name} in your community.", name=name)
    return found[0]


def _default_scope(session: Session, person: Person) -> Scope:
    """What a person binds when they name no scope: the committee the community, a grid worker
    their grid, a building leader their building."""
    have = scopes.roles(person)
    if "committee" in have:
        community = session.get(Scope, person.community_id)
        assert community is not None
        return community
    grid = scopes.duty_grid(session, person) if "grid_worker" in have else None
    building = scopes.duty_building(session, person) if "building_leader" in have else None
    found = grid or building
    if found is None:
        raise Refused("Only building leaders, grid workers and committee members can bind a group.")
    return found


def bind(
    session: Session, person: Person, channel: str, chat_id: str, scope_name: str, now: datetime,
    admin: bool | None, title: str | None = None,
) -> Group:  # fmt: skip
    if admin is False:
        raise Refused("Only an admin of this group can bind it.")
    scope = _scope_named(session, person, scope_name) if scope_name else _default_scope(session, person)
    if not scopes.leads(session, person, scope, BINDERS):
        raise Refused(
            "You cannot bind a group to {scope}: a building leader binds their building, a grid worker their grid, the committee any scope.",
            scope=scope.path,
        )
    # held until commit: two binds of the same group at once take turns (of the same scope, the
    # unique index keeps one, and the other is refused)
    group = session.scalar(locked(select(Group).where(Group.channel == channel, Group.chat_id == chat_id)))
    if group is not None and group.unbound_at is None:
        raise Refused("This group is already bound to {scope}; /unlinkgroup first.", scope=group.scope.path)
    taken = session.scalar(
        select(Group).where(Group.scope_id == scope.id, Group.channel == channel, Group.unbound_at.is_(None))
    )
    if taken is not None:
        raise Refused("{scope} already has a group here; it must be unbound there first.", scope=scope.path)
    try:
        with session.begin_nested():  # another bind of this group or this scope at the same moment won
            if group is None:
                group = Group(channel=channel, chat_id=chat_id)
                session.add(group)
            group.community_id, group.scope_id, group.scope = scopes.community_id(scope), scope.id, scope
            group.bound_by, group.bound_at, group.unbound_at, group.title = person.id, now, None, title
            group.blocked_at = None
    except IntegrityError:
        raise Refused(
            "{scope} already has a group here; it must be unbound there first.", scope=scope.path
        ) from None
    audit.append(
        session, at=now, action="link group", community_id=group.community_id, actor_id=person.id,
        detail={"group": group.id, "channel": channel, "scope": scope.path},
    )  # fmt: skip
    return group


def unbind(
    session: Session, person: Person, channel: str, chat_id: str, now: datetime, admin: bool | None
) -> Group:
    """Undo a binding: who may bind the scope, or who bound it. What was queued for the group and
    not sent fails, saying so."""
    if admin is False:
        raise Refused("Only an admin of this group can unbind it.")
    group = session.scalar(
        locked(
            select(Group).where(
                Group.channel == channel, Group.chat_id == chat_id, Group.unbound_at.is_(None)
            )
        )
    )
    if group is None:
        raise Refused("This group is not bound to a scope.")
    if group.community_id != person.community_id or not (
        group.bound_by == person.id or scopes.leads(session, person, group.scope, BINDERS)
    ):
        raise Refused("Only who may bind {scope} can unbind this group.", scope=group.scope.path)
    _unbind(session, group, now, person.id)
    return group


def _unbind(session: Session, group: Group, now: datetime, actor_id: int | None) -> None:
    group.unbound_at = now
    session.execute(
        update(Outbox)
        .where(Outbox.group_id == group.id, Outbox.sent_at.is_(None), Outbox.failed_at.is_(None))
        .values(failed_at=now, error="the group was unbound")
    )
    audit.append(
        session, at=now, action="unlink group", community_id=group.community_id, actor_id=actor_id,
        detail={"group": group.id, "channel": group.channel, "scope": group.scope.path},
    )  # fmt: skip


# --- chats the operator binds (a WeCom group robot: it only receives, and says nothing of itself)


def scope_at(session: Session, path: str) -> Scope:
    """A scope by its full path, its community's name first (`梧桐社区/东片区/东一网格/1栋`)."""
    scope = session.scalar(select(Scope).where(Scope.path == path.strip().strip("/")))
    if scope is None:
        raise Refused("There is no scope {name}: give its full path, e.g. {path}.", name=path,
                      path="梧桐社区/东片区/东一网格/1栋")  # fmt: skip
    return scope


def attach(
    session: Session, scope: Scope, channel: str, chat_id: str, now: datetime, markdown: bool = False
) -> tuple[Group, bool]:
    """Bind a chat to a scope for the operator; (its binding, whether it took the place of the
    scope's chat on this channel). A scope's chat replaced by another (a robot made anew, its URL
    changed) hands on what was queued or held for it: nothing is lost."""
    same = session.scalar(locked(select(Group).where(Group.channel == channel, Group.chat_id == chat_id)))
    if same is not None and same.unbound_at is None and same.scope_id != scope.id:
        raise Refused("This one is already bound to {scope}; remove it there first.", scope=same.scope.path)
    current = session.scalar(
        locked(
            select(Group).where(
                Group.scope_id == scope.id, Group.channel == channel, Group.unbound_at.is_(None)
            )
        )
    )
    group = same or Group(channel=channel, chat_id=chat_id)
    replaced = current is not None and current is not group
    if replaced:
        assert current is not None
        current.unbound_at = now
        session.flush()  # one bound chat a scope and channel: the old one is unbound first
    if same is None:
        session.add(group)
    group.community_id, group.scope_id, group.scope = scopes.community_id(scope), scope.id, scope
    group.bound_by, group.bound_at, group.unbound_at, group.blocked_at = None, now, None, None
    group.markdown = markdown
    session.flush()
    if replaced:
        assert current is not None
        session.execute(
            update(Outbox)
            .where(Outbox.group_id == current.id, Outbox.sent_at.is_(None), Outbox.failed_at.is_(None))
            .values(group_id=group.id)
        )
    outbox.release_held(session, now, group_id=group.id)
    audit.append(
        session, at=now, action="link group", community_id=group.community_id,
        detail={"group": group.id, "channel": channel, "scope": scope.path},
    )  # fmt: skip
    return group, replaced


def detach(session: Session, scope: Scope, channel: str, now: datetime) -> Group:
    """Unbind the scope's chat on this channel, for the operator: what was queued for it fails,
    saying so."""
    group = session.scalar(
        locked(
            select(Group).where(
                Group.scope_id == scope.id, Group.channel == channel, Group.unbound_at.is_(None)
            )
        )
    )
    if group is None:
        raise Refused("{scope} has nothing bound on {channel}.", scope=scope.path, channel=channel)
    _unbind(session, group, now, None)
    return group


def presence(session: Session, channel: str, chat_id: str, here: bool, now: datetime) -> None:
    """The platform says the bot was removed from a group (its messages are held from now on) or
    is in it again (what was held goes out)."""
    group = bound(session, channel, chat_id)
    if group is None:
        return
    if here:
        back(session, group, now)
    elif group.blocked_at is None:
        group.blocked_at = now


def back(session: Session, group: Group, now: datetime) -> None:
    """The bot hears from the group again (it was added back): what was held for it goes out."""
    if group.blocked_at is not None:
        group.blocked_at = None
        outbox.release_held(session, now, group_id=group.id)


def moved(session: Session, channel: str, chat_id: str, new_chat_id: str) -> None:
    """The platform gave the group a new id (a Telegram group upgraded to a supergroup): its
    binding and what is queued for it follow."""
    session.execute(
        update(Group).where(Group.channel == channel, Group.chat_id == chat_id).values(chat_id=new_chat_id)
    )


def listed(session: Session, channel: str | None = None) -> list[Group]:
    """Every group bound now (on the channel), by scope."""
    query = select(Group).join(Scope, Scope.id == Group.scope_id).where(Group.unbound_at.is_(None))
    if channel is not None:
        query = query.where(Group.channel == channel)
    return list(session.scalars(query.order_by(Scope.path, Group.channel)))
