"""Charts as SVG drawn on the server: a bar for a share (support, turnout, an item's progress) and
a vote's results. No script runs in the browser, and they print as they show."""

from __future__ import annotations

import segno
from markupsafe import Markup, escape

ROW = 30  # the height of one choice's row in a result chart
WIDTH = 320
LABEL = 130  # the width given to a choice's label
TEXT_WIDTH = 13  # a wide (CJK) character at the chart's font size; a narrow one counts half


def bar(share: float, label: str, tone: str = "go") -> Markup:
    """A bar filled to `share` (0–1); `label` is what a screen reader says of it."""
    filled = round(max(0.0, min(share, 1.0)) * 100, 1)
    return Markup(
        '<svg class="bar {tone}" viewBox="0 0 100 6" preserveAspectRatio="none" role="img" aria-label="{label}">'
        '<rect width="100" height="6" rx="3" class="track"/>'
        '<rect width="{filled}" height="6" rx="3" class="fill"/></svg>'
    ).format(tone=tone, label=label, filled=filled)


def _fit(text: str, width: float) -> str:
    """The label cut to fit `width` (a wide character takes a whole step, a narrow one half)."""
    used, kept = 0.0, []
    for ch in text:
        used += TEXT_WIDTH if ord(ch) > 0x2E7F else TEXT_WIDTH / 2
        if used > width:
            return "".join(kept[:-1]) + "…"
        kept.append(ch)
    return text


def results(options: list[dict], label: str) -> Markup:
    """One row a choice: its label, a bar scaled to the most votes, the count; an adopted choice
    marked. `options` as the public record gives them (`votes` known)."""
    most = max((o["votes"] or 0 for o in options), default=0) or 1
    span = WIDTH - LABEL - 50
    rows = []
    for k, option in enumerate(options):
        y = k * ROW
        votes = option["votes"] or 0
        length = round(span * votes / most, 1)
        tone = "adopted" if option.get("adopted") else "plain"
        shape = Markup(
            '<g class="{tone}"><text x="0" y="{ty}">{number}. {text}</text>'
            '<rect x="{x}" y="{by}" width="{span}" height="14" rx="3" class="track"/>'
            '<rect x="{x}" y="{by}" width="{length}" height="14" rx="3" class="fill"/>'
            '<text x="{nx}" y="{ty}" class="count">{votes}</text></g>'
        )
        label_text = _fit(option["label"], LABEL - 24)
        row = shape.format(tone=tone, ty=y + 19, by=y + 8, x=LABEL, span=span, length=length,
                           nx=LABEL + span + 6, number=option["number"], text=label_text, votes=votes)  # fmt: skip
        rows.append(row)
    height = max(len(options), 1) * ROW
    return Markup(
        '<svg class="results" viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="{label}">{rows}</svg>'
    ).format(w=WIDTH, h=height, label=escape(label), rows=Markup("").join(rows))


def qr(link: str) -> Markup:
    """A QR code of the link, as SVG (made here: no service is asked)."""
    return Markup(segno.make(link, error="m").svg_inline(scale=3, omitsize=False))
