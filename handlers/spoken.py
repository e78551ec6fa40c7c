"""A command recognised from speech is read back before it counts (语音确认): a support, a vote or a
rating that the recognition may have misheard ("附议十二" for "附议十一") waits for a yes.

A dialog of one step. What was said is kept sealed with the ballot key while it waits, so that
a reader of the database never sees a spoken ballot's choice; a key that no longer opens it
asks the person to say it again.

Diagram: spoken.mmd.
"""

from __future__ import annotations

from flows.messages import Option, Reply
from handlers.context import Ctx
from handlers.dialog import NO, YES, Dialog, Step, choose, start
from locales import N_

CONFIRMED = frozenset({"support", "vote", "rate"})  # what a misheard word would do wrongly
PURPOSE = "yishi spoken command"
SAID_AGAIN = N_("I could not keep what you said; please say or type it again.")


def _options(ctx: Ctx) -> list[Option]:
    return [Option(ctx.t("Yes"), "yes"), Option(ctx.t("No"), "no")]


def _prompt(ctx: Ctx, data: dict) -> Reply:
    said = ctx.key.unseal_text(PURPOSE, data["said"]) or "…"
    return Reply(ctx.t("You said: {said}. Is that right?", said=said), tuple(_options(ctx)))


def _answer(ctx: Ctx, data: dict, text: str) -> tuple[str | None, list[Reply]]:
    from handlers.dispatch import parse  # the dispatcher runs what was confirmed

    word = text.strip().lower()
    chosen = "yes" if word in YES else "no" if word in NO else choose(text, _options(ctx)).payload
    if chosen == "no":
        return None, [Reply(ctx.t("Cancelled."))]
    said = ctx.key.unseal_text(PURPOSE, data["said"])
    parsed = parse(said, is_group=False) if said else None
    if parsed is None or parsed.command is None:
        return None, [Reply(ctx.t(SAID_AGAIN))]
    return None, parsed.command.run(ctx, parsed.args)


SPOKEN = Dialog("spoken", "confirm", {"confirm": Step(_prompt, _answer)})


def confirm(ctx: Ctx, said: str) -> list[Reply]:
    """Read back what was said, and wait for a yes."""
    return start(ctx, SPOKEN, {"said": ctx.key.seal_text(PURPOSE, said)})
