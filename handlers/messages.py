"""The neutral messages every channel speaks: an `Incoming` in, `Reply` objects out."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Incoming:
    """One message or button press, as any channel sees it."""

    channel: str
    account_id: str
    chat_id: str = ""
    text: str = ""
    payload: str | None = None
    is_group: bool = False


@dataclass(frozen=True)
class Option:
    """A choice: the console prints `[n] label`; a chat shows a button sending `payload`."""

    label: str
    payload: str


@dataclass(frozen=True)
class Reply:
    text: str
    options: tuple[Option, ...] = field(default=())
