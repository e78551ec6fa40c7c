"""In a group: /linkgroup [SCOPE] (绑定本群) binds it to a scope, /unlinkgroup (解绑本群) undoes it."""

from __future__ import annotations

from flows import groups
from flows.errors import Refused
from flows.messages import Reply
from handlers.context import Ctx


def _in_a_group(ctx: Ctx, command: str) -> None:
    if not ctx.incoming.is_group:
        raise Refused("{command} is sent in the group to bind, not here.", command=command)


def link(ctx: Ctx, args: str) -> list[Reply]:
    _in_a_group(ctx, "/linkgroup")
    i = ctx.incoming
    group = groups.bind(
        ctx.session, ctx.registered, i.channel, i.chat_id, args.strip(), ctx.now, i.group_admin, i.chat_title
    )
    return [
        Reply(
            ctx.t(
                "This group is now bound to {scope}: announcements, votes, reminders, results and the weekly digest of {scope} come here.",
                scope=group.scope.path,
            )
        )
    ]


def unlink(ctx: Ctx, args: str) -> list[Reply]:
    _in_a_group(ctx, "/unlinkgroup")
    i = ctx.incoming
    group = groups.unbind(ctx.session, ctx.registered, i.channel, i.chat_id, ctx.now, i.group_admin)
    return [Reply(ctx.t("This group is no longer bound to {scope}.", scope=group.scope.path))]
