"""The resident's vocabulary: every command, its Chinese alias, who may use it, what runs it.

`who` decides both what /help shows a person and what the dispatcher lets through; finer
rules (which building, which status) are the flows' to check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flows import actions, scopes
from flows.messages import Reply
from handlers import account, decide_commands, digest_command, group_commands, issue_commands
from handlers.context import Ctx
from locales import N_, Translator

Who = Callable[[Ctx], bool]


def anyone(ctx: Ctx) -> bool:
    return True


def unbound(ctx: Ctx) -> bool:
    return ctx.member is None


def registered(ctx: Ctx) -> bool:
    return ctx.member is not None


def resident(ctx: Ctx) -> bool:
    member = ctx.member
    return member is not None and member.household_id is not None


def leader(ctx: Ctx) -> bool:
    return ctx.person is not None and bool(
        scopes.roles(ctx.person) & {"building_leader", "grid_worker", "committee"}
    )


def building_leader(ctx: Ctx) -> bool:
    return ctx.person is not None and "building_leader" in scopes.roles(ctx.person)


def opener(ctx: Ctx) -> bool:
    return ctx.person is not None and bool(scopes.roles(ctx.person) & {"building_leader", "committee"})


def owner(ctx: Ctx) -> bool:
    return ctx.person is not None and actions.owns_any(ctx.session, ctx.person)


def committee(ctx: Ctx) -> bool:
    return ctx.person is not None and "committee" in scopes.roles(ctx.person)


REFUSALS: dict[Who, str] = {
    unbound: N_("This account is already connected to the register."),
    registered: N_(
        "You are not in the register yet. Send /join CODE with the invite code from your community."
    ),
    resident: N_("Only residents with a home in the register can do this."),
    leader: N_("Only building leaders, grid workers and committee members can do this."),
    committee: N_("Only committee members can do this."),
    building_leader: N_("Only building leaders can do this."),
    owner: N_("Only owners of action items can do this."),
    opener: N_("Only building leaders and committee members can do this."),
}


@dataclass(frozen=True)
class Command:
    name: str
    aliases: tuple[str, ...]
    who: Who
    usage: str
    run: Callable[[Ctx, str], list[Reply]]
    # needs a dialog or privacy: in a group it is answered with a pointer to the private chat
    private: bool = False


# fmt: off
COMMANDS: tuple[Command, ...] = (
    Command("start", ("开始",), anyone, N_("/start (开始) — welcome"), account.start),
    Command("help", ("帮助",), anyone, N_("/help (帮助) — the commands you can use"), account.help_),
    Command("join", ("加入",), unbound, N_("/join CODE (加入) — connect this account with your invite code"), account.join, private=True),
    Command("link", ("关联",), registered, N_("/link (关联) — a code that binds another channel of yours (WeChat, Telegram)"), account.link, private=True),
    Command("lang", ("语言",), anyone, N_("/lang zh|en (语言) — reply language"), account.lang),
    Command("raise", ("提议",), resident, N_("/raise (提议) — raise an issue: title, details, scope"), issue_commands.raise_, private=True),
    Command("issues", ("议题",), registered, N_("/issues (议题) — open issues in your scopes"), issue_commands.list_issues),
    Command("issue", ("查看",), registered, N_("/issue N (查看) — one issue in full"), issue_commands.show),
    Command("support", ("附议",), resident, N_("/support N (附议) — second issue N"), issue_commands.support),
    Command("comment", ("评论",), registered, N_("/comment N TEXT (评论) — discuss issue N"), issue_commands.comment),
    Command("report", ("举报",), resident, N_("/report C (举报) — flag comment C"), issue_commands.report),
    Command("review", ("审核",), committee, N_("/review C keep|remove (审核) — decide on a hidden comment"), issue_commands.review),
    Command("withdraw", ("撤回",), resident, N_("/withdraw N (撤回) — withdraw your issue N"), issue_commands.withdraw),
    Command("escalate", ("上报",), leader, N_("/escalate N (上报) — move issue N one scope up"), issue_commands.escalate),
    Command("refer", ("转办",), committee, N_("/refer N BODY (转办) — refer issue N outside the community"), issue_commands.refer),
    Command("merge", ("合并",), committee, N_("/merge N M (合并) — issue N duplicates M"), issue_commands.merge),
    Command("major", ("重大",), committee, N_("/major N (重大) — flag issue N as a major matter before its vote"), decide_commands.major),
    Command("openvote", ("发起表决",), opener, N_("/openvote N (发起表决) — open a vote on issue N"), decide_commands.openvote, private=True),
    Command("vote", ("投票",), resident, N_("/vote N CHOICE… (投票) — vote with the numbers /issue N shows"), decide_commands.vote),
    Command("proxyvote", ("代投",), building_leader, N_("/proxyvote N NAME CHOICE… (代投) — a ballot for a neighbour without a phone"), decide_commands.proxyvote, private=True),
    Command("closevote", ("结束表决",), opener, N_("/closevote N (结束表决) — close the vote on issue N early"), decide_commands.closevote),
    Command("task", ("派单",), committee, N_("/task N OWNER DUE TITLE (派单) — an action item on a passed issue"), decide_commands.task),
    Command("progress", ("进展",), owner, N_("/progress T PCT TEXT (进展) — progress on your action item T"), decide_commands.progress),
    Command("done", ("完成",), owner, N_("/done T (完成) — your action item T is done"), decide_commands.done),
    Command("rate", ("评价",), resident, N_("/rate N 1-5 [WHY] (评价) — is the matter of issue N settled?"), decide_commands.rate),
    Command("digest", ("摘要", "订阅摘要"), registered, N_("/digest (摘要) — the digest now (leaders, committee); /digest on|off — a weekly one (residents)"), digest_command.run, private=True),
    Command("my", ("我的",), registered, N_("/my (我的) — your issues"), account.my, private=True),
    Command("linkgroup", ("绑定本群",), leader, N_("/linkgroup [SCOPE] (绑定本群) — in a group: bind it to your building, grid or a scope"), group_commands.link),
    Command("unlinkgroup", ("解绑本群",), leader, N_("/unlinkgroup (解绑本群) — in a group: undo its binding"), group_commands.unlink),
    Command("privacy", ("隐私",), anyone, N_("/privacy (隐私) — what Yishi keeps about you, and why"), account.privacy),
    Command("cancel", ("取消",), anyone, N_("/cancel (取消) — leave the current dialog"), account.cancel, private=True),
)
# fmt: on

BY_NAME = {c.name: c for c in COMMANDS}
BY_ALIAS = {alias: c for c in COMMANDS for alias in c.aliases}
CANCEL = BY_NAME["cancel"]
# a group's own commands: they bind it, so a channel checks that their sender is an admin of it
GROUP_ONLY = ("linkgroup", "unlinkgroup")


def menu(t: Translator, in_group: bool) -> list[tuple[str, str]]:
    """A chat's list of commands, (name, what it takes and does), in `t`'s language: in a group
    those that run there, in a private chat all but the group's own."""
    shown = [c for c in COMMANDS if (not c.private if in_group else c.name not in GROUP_ONLY)]
    return [(c.name, t(c.usage).removeprefix(f"/{c.name}").strip()) for c in shown]
