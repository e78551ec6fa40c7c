"""Guided dialogs as explicit state tables, their state kept in the database.

A dialog is a table of steps. Each step has a prompt and an answer handler; the handler
returns the next step's name (or None to finish) and its replies. A refusal inside a step
undoes what the step did, repeats the prompt and keeps the dialog where it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from flows.errors import Refused
from flows.numbers import whole
from handlers import format as fmt
from handlers.context import Ctx
from handlers.messages import Option, Reply
from storage.models import DialogState

LIFETIME = timedelta(hours=24)

Prompt = Callable[[Ctx, dict], Reply]
Answer = Callable[[Ctx, dict, str], tuple[str | None, list[Reply]]]


@dataclass(frozen=True)
class Step:
    prompt: Prompt
    answer: Answer


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


def start(ctx: Ctx, dialog: Dialog, data: dict | None = None) -> list[Reply]:
    clear(ctx)
    data = data or {}
    ctx.session.add(
        DialogState(
            account_id=ctx.account.id,
            flow=dialog.name,
            step=dialog.first,
            data=data,
            expires_at=ctx.now + LIFETIME,
        )
    )
    return [dialog.steps[dialog.first].prompt(ctx, data)]


def advance(ctx: Ctx, dialog: Dialog, state: DialogState, text: str) -> list[Reply]:
    step = dialog.steps[state.step]
    data = dict(state.data or {})
    try:
        with ctx.session.begin_nested():  # a refusal undoes what the step did, and nothing else
            following, replies = step.answer(ctx, data, text)
    except Refused as refusal:
        return [Reply(fmt.refusal(ctx.t, refusal)), step.prompt(ctx, data)]
    if following is None:
        clear(ctx)
        return replies
    state.step, state.data, state.expires_at = following, data, ctx.now + LIFETIME
    return [*replies, dialog.steps[following].prompt(ctx, data)]


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
