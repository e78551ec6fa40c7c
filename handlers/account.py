"""Who am I to the bot: /start, /help, /join, /lang, /cancel, /my."""

from __future__ import annotations

from sqlalchemy import select

from flows import actions, audit, invites, outbox, people, settings, votes
from flows import issues as flow
from flows.errors import Refused
from flows.messages import Reply
from handlers import ballot, dialog
from handlers import format as fmt
from handlers.context import Ctx
from locales import N_
from storage.models import Invite, Scope

CHANNEL_NAMES = {"telegram": N_("Telegram"), "wechat": N_("WeChat"), "console": N_("the console")}
LANGUAGES = {
    "zh": "zh_CN",
    "zh_cn": "zh_CN",
    "zh-cn": "zh_CN",
    "cn": "zh_CN",
    "中文": "zh_CN",
    "en": "en",
    "english": "en",
    "英文": "en",
}


def start(ctx: Ctx, args: str) -> list[Reply]:
    """Welcome; with a start parameter (a deep link, or a pointer from a group), what it starts:
    `join_CODE`, `vote_POLL`, or a command (`raise`, `my`, `openvote_N` …)."""
    arg = args.strip()
    if arg:
        return _started(ctx, arg)
    if ctx.person is None:
        return [
            Reply(
                ctx.t(
                    "Welcome to Yishi (议事): raise, discuss, decide and act on your community's matters together.\nSend /join CODE with the invite code from your community to begin."
                )
            ),
            Reply(privacy_text(ctx)),
        ]
    return [Reply(ctx.t("Welcome back, {name}.", name=ctx.person.name)), *help_(ctx, "")]


def _started(ctx: Ctx, arg: str) -> list[Reply]:
    from handlers.commands import BY_NAME  # the table names this module's functions

    word, _, rest = arg.partition("_")
    if word == "join" and rest:
        return join(ctx, rest)
    if word == "vote" and rest.isdigit():
        return [ballot.private_ballot(ctx, ballot.open_for(ctx, int(rest)))]
    command = BY_NAME.get(word)
    if command is not None and command.name not in ("start", "join") and command.who(ctx):
        return command.run(ctx, rest)
    if "_" not in arg:  # an invite code sent as `/start CODE`
        return join(ctx, arg)
    raise Refused("This link is not valid (any more). Send /help for the commands you can use.")


DEFAULT_NOTICE = N_(
    "What Yishi keeps about you, and why: your entry in the community's register (name, building, "
    "room, role), to know who may raise, support and vote where; this chat account, to answer you "
    "and tell you of votes and results; what you write (issues, comments, ratings), which your "
    "neighbours read; and for a secret vote only that you took part, never your choice. The record "
    "of who did what is kept so that residents can check the committee's work. Ask the committee "
    "to correct or remove your entry."
)


def privacy_text(ctx: Ctx) -> str:
    """The privacy notice: the community's own wording where the committee set one."""
    community = ctx.member.community_id if ctx.member else privacy_community(ctx)
    own = str(settings.get(ctx.session, community, "privacy_notice")) if community is not None else ""
    return own or ctx.t(DEFAULT_NOTICE)


def privacy_community(ctx: Ctx) -> int | None:
    """For someone not in the register yet: the community, where the database holds only one."""
    found = ctx.session.scalars(select(Scope.id).where(Scope.level == "community").limit(2)).all()
    return found[0] if len(found) == 1 else None


def privacy(ctx: Ctx, args: str) -> list[Reply]:
    return [Reply(privacy_text(ctx))]


def help_(ctx: Ctx, args: str) -> list[Reply]:
    from handlers.commands import COMMANDS  # the table names this module's functions

    lines = [ctx.t("Commands you can use:")]
    # in a group, what is done there (the rest is pointed to the private chat)
    lines += [ctx.t(c.usage) for c in COMMANDS if c.who(ctx) and not (ctx.incoming.is_group and c.private)]
    if ctx.incoming.channel == "console":
        lines.append(
            ctx.t(
                "Console only: /as NAME — speak as a person of the register; /in GROUP — speak in a group chat (/in alone: back); /press N — press button N; /clock +3d — move the clock"
            )
        )
    return [Reply("\n".join(lines))]


def join(ctx: Ctx, args: str) -> list[Reply]:
    code = args.strip().upper()
    if not code:
        raise Refused("Usage: {usage}", usage="/join CODE")
    if ctx.person is not None:
        raise Refused("This account is already bound to {name}.", name=ctx.person.name)
    # held until commit: two accounts sending the same code at once cannot both be bound by it
    invite = ctx.session.get(Invite, code, with_for_update={"key_share": True}, populate_existing=True)
    if invite is None or invite.revoked or invite.person.moved_out:
        raise Refused(
            "The invite code {code} is not valid. Check it with your building leader or the committee.",
            code=code,
        )
    if invite.used_at is not None:
        raise Refused("The invite code {code} has already been used.", code=code)
    invite.used_at, invite.used_by_account_id = ctx.now, ctx.account.id
    ctx.account.person_id, ctx.account.last_seen_at = invite.person_id, ctx.now
    ctx.person = invite.person
    outbox.release_held(ctx.session, ctx.now, person_id=invite.person_id)  # a new way to reach them
    audit.append(
        ctx.session,
        at=ctx.now,
        action="join",
        community_id=invite.person.community_id,
        actor_id=invite.person_id,
        detail={"channel": ctx.account.channel},
    )
    return [
        Reply(
            ctx.t(
                "Welcome, {who}. You are now connected to {community}.",
                who=people.label(ctx.session, invite.person),
                community=invite.person.community.name,
            )
        ),
        Reply(privacy_text(ctx)),
        *help_(ctx, ""),
    ]


def link(ctx: Ctx, args: str) -> list[Reply]:
    """A code for binding another channel of the person's: sent there as `加入 CODE` (or /join)."""
    person = ctx.registered
    code = invites.reissue(ctx.session, person, ctx.now, actor_id=person.id)
    return [
        Reply(
            ctx.t(
                "Your link code is {code}. On your other channel (WeChat or Telegram), send: 加入 {code} — it binds that account to you too, once. Your votes count once whichever channel they come from.",
                code=code,
            )
        )
    ]


def lang(ctx: Ctx, args: str) -> list[Reply]:
    locale = LANGUAGES.get(args.strip().lower())
    if locale is None:
        raise Refused("Usage: {usage}", usage="/lang zh | /lang en")
    ctx.account.locale = locale
    if ctx.person is not None:
        ctx.person.locale = locale
    ctx.t = type(ctx.t)(locale)
    return [Reply(ctx.t("I will answer you in English."))]


def cancel(ctx: Ctx, args: str) -> list[Reply]:
    if dialog.load(ctx) is None:
        return [Reply(ctx.t("There is nothing to cancel."))]
    dialog.clear(ctx)
    return [Reply(ctx.t("Cancelled."))]


def my(ctx: Ctx, args: str) -> list[Reply]:
    person = ctx.registered
    mine, backed = flow.authored(ctx.session, person), flow.supported(ctx.session, person)
    lines = [ctx.t("You are {who}.", who=people.label(ctx.session, person))]
    names = [ctx.t(CHANNEL_NAMES.get(c, c)) for c in invites.channels(ctx.session, person.id)]
    lines.append(ctx.t("Your channels: {channels}. /link binds another.", channels=", ".join(names)))
    lines.append(ctx.t("Issues you raised:") if mine else ctx.t("You have raised no open issues."))
    lines += [fmt.line(ctx.t, i) for i in mine]
    if backed:
        lines.append(ctx.t("Issues you support:"))
        lines += [fmt.line(ctx.t, i) for i in backed]
    waiting = votes.waiting_for(ctx.session, person, ctx.now)
    if waiting:
        lines.append(ctx.t("Votes waiting for you:"))
        lines += [fmt.line(ctx.t, issue) + f"  /vote {issue.id}" for issue, _ in waiting]
    owned = actions.owned_by(ctx.session, person)
    if owned:
        tz = ctx.timezone(person.community_id)
        lines.append(ctx.t("Your action items:"))
        lines += [fmt.item_line(ctx.t, item, tz) for item in owned]
    return [Reply("\n".join(lines))]
