"""Guided dialogs as explicit state tables, their state kept in the database.

A dialog is a table of steps. Each step has a prompt and an answer handler; the handler
returns the next step's name (or None to finish) and its replies. A refusal inside a step
undoes what the step did, repeats the prompt and keeps the dialog where it was.

A step's options go out as buttons whose payload names the dialog (with a token of this one
dialog), the step and the option: `d:raise.3f2a:scope:scope:12`. A pressed button answers only
the step it was shown for; an old keyboard, or a forged payload, is refused as no longer valid,
never taken for the answer to another step or for a title.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta

from flows.errors import Refused
from flows.messages import STALE, Option, Reply
from flows.numbers import whole
from handlers import format as fmt
from handlers.context import Ctx
from locales import N_
from storage.models import DialogState

LIFETIME = timedelta(hours=24)

Prompt = Callable[[Ctx, dict], Reply]
Answer = Callable[[Ctx, dict, str], tuple[str | None, list[Reply]]]


@dataclass(frozen=True)
class Step:
    prompt: Prompt
    answer: Answer
    photo: bool = False  # takes a photo sent with the answer (its caption is the text)


PHOTO_NOT_HERE = N_("I keep a photo only while an issue is raised, at its details step (/raise).")


@dataclass(frozen=True)
class Dialog:
    name: str
    first: str
    steps: dict[str, Step]


def load(ctx: Ctx) -> DialogState | None:
    """The account's current dialog (loaded with the message), dropped once it has expired."""
    if ctx.dialog is not None and ctx.now >= ctx.dialog.expires_at:
        clear(ctx)
    return ctx.dialog


def clear(ctx: Ctx) -> None:
    if ctx.dialog is not None:
        ctx.session.delete(ctx.dialog)
        ctx.session.flush()
        ctx.dialog = None


def _prompt(ctx: Ctx, dialog: Dialog, step: str, data: dict) -> Reply:
    """The step's prompt, its options as buttons that answer this step of this dialog only."""
    reply = dialog.steps[step].prompt(ctx, data)
    tag = f"d:{dialog.name}.{data['_token']}:{step}:"
    return replace(reply, options=tuple(Option(o.label, tag + o.payload) for o in reply.options))


def start(ctx: Ctx, dialog: Dialog, data: dict | None = None) -> list[Reply]:
    clear(ctx)
    data = (data or {}) | {"_token": secrets.token_hex(2)}
    ctx.session.add(
        DialogState(
            account_id=ctx.account.id,
            flow=dialog.name,
            step=dialog.first,
            data=data,
            expires_at=ctx.now + LIFETIME,
        )
    )
    return [_prompt(ctx, dialog, dialog.first, data)]


def pressed(dialog: Dialog, state: DialogState, payload: str) -> str:
    """The option a button sends, if the button is of this step of this dialog; else refused."""
    tag = f"d:{dialog.name}.{(state.data or {}).get('_token')}:{state.step}:"
    if not payload.startswith(tag) or len(payload) == len(tag):
        raise Refused(STALE)
    return payload[len(tag) :]


def advance(ctx: Ctx, dialog: Dialog, state: DialogState, text: str, button: bool = False) -> list[Reply]:
    """The step answered with `text` (typed, or a button's option: then the pressed message loses
    its buttons)."""
    step = dialog.steps[state.step]
    data = dict(state.data or {})
    if button and text not in {o.payload for o in step.prompt(ctx, data).options}:
        raise Refused(STALE)  # not one of the step's own buttons (a free-text step has none)
    done = [Reply("", replace=True)] if button else []
    if ctx.incoming.photo is not None and not step.photo:
        return [Reply(ctx.t(PHOTO_NOT_HERE)), _prompt(ctx, dialog, state.step, data)]
    try:
        with ctx.session.begin_nested():  # a refusal undoes what the step did, and nothing else
            following, replies = step.answer(ctx, data, text)
    except Refused as refusal:
        return [Reply(fmt.refusal(ctx.t, refusal)), _prompt(ctx, dialog, state.step, data)]
    if following is None:
        clear(ctx)
        return done + replies
    state.step, state.data, state.expires_at = following, data, ctx.now + LIFETIME
    return [*done, *replies, _prompt(ctx, dialog, following, data)]


def pick(text: str, options: list[Option]) -> Option | None:
    """The option a person chose: by its number, its payload (a button), or the start of its label."""
    text = text.strip()
    number = whole(text, digits=3)
    if number is not None:
        return options[number - 1] if 1 <= number <= len(options) else None
    found = [o for o in options if o.payload == text or (text and o.label.startswith(text))]
    return found[0] if len(found) == 1 else None


def choose(text: str, options: list[Option]) -> Option:
    """The option chosen, or a refusal that names the numbers to answer with."""
    chosen = pick(text, options)
    if chosen is None:
        raise Refused("Please answer with one of the numbers 1–{n}.", n=len(options))
    return chosen


YES = frozenset({"yes", "y", "是", "确认", "好", "ok"})
NO = frozenset({"no", "n", "否", "不"})
