"""Numbers people type. NFKC has already made full-width digits ASCII; other scripts' digits
(which `str.isdigit` accepts but `int` may not) are not numbers here."""

from __future__ import annotations


def whole(text: str, digits: int = 9) -> int | None:
    """The non-negative whole number `text` is, or None."""
    text = text.strip()
    if not text or len(text) > digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)
