"""/digest: the digest now (leaders, committee), or a resident's weekly subscription (on|off)."""

from __future__ import annotations

from flows import audit, digest, scopes
from flows.errors import Refused
from flows.messages import Reply
from handlers import format as fmt
from handlers.context import Ctx

SWITCH = {"on": True, "off": False, "开": True, "关": False, "订阅": True, "退订": False}


def run(ctx: Ctx, args: str) -> list[Reply]:
    person = ctx.registered
    word = args.strip().lower()
    if word:
        if word not in SWITCH:
            raise Refused("Usage: {usage}", usage="/digest | /digest on | /digest off")
        if person.household_id is None:
            raise Refused("Only residents with a home in the register can do this.")
        person.digest = SWITCH[word]
        audit.append(
            ctx.session,
            at=ctx.now,
            action="digest",
            community_id=person.community_id,
            actor_id=person.id,
            detail={"on": person.digest},
        )
        if person.digest:
            return [Reply(ctx.t("You will receive a weekly digest of your scopes on Mondays at 08:00."))]
        return [Reply(ctx.t("You will no longer receive the weekly digest."))]
    if not scopes.roles(person) & {"building_leader", "grid_worker", "committee"}:
        raise Refused(
            "The digest on demand is for building leaders and the committee; residents can subscribe with /digest on."
        )
    start = ctx.now - digest.period_of(person)
    found = digest.collect(ctx.session, person, start, ctx.now)
    tz = ctx.timezone(person.community_id)
    if found.empty():
        return [Reply(ctx.t("Nothing new in your scopes since {start}.", start=fmt.local(start, tz)))]
    return [
        Reply(
            "\n".join(
                [ctx.t("Digest of your scopes (摘要)"), *fmt.digest_lines(ctx.session, ctx.t, found, tz)]
            )
        )
    ]
