"""Translation: the gettext catalogs of this folder, compiled from the committed `.po` at start-up.

Message ids are English; `zh_CN` is the default language of replies. Strings are marked
with `t(...)` (translate now, in the reader's language) or `N_(...)` (mark only, translate
later), and `Refused(...)` carries a marked message out of the flows.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).resolve().parent
LANGUAGES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"


def N_(msgid: str) -> str:
    """Mark a message for extraction; it is translated where it is shown."""
    return msgid


@cache
def catalog(locale: str) -> gettext.NullTranslations:
    po = LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po.is_file():
        return gettext.NullTranslations()
    with po.open("rb") as f:
        cat = read_po(f, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, cat)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def translate(locale: str, msgid: str, **params: object) -> str:
    text = catalog(locale if locale in LANGUAGES else DEFAULT_LOCALE).gettext(msgid)
    return text.format(**params) if params else text


class Translator:
    """`t("Issue #{id} published.", id=7)` in one reader's language."""

    def __init__(self, locale: str) -> None:
        self.locale = locale if locale in LANGUAGES else DEFAULT_LOCALE

    def __call__(self, msgid: str, **params: object) -> str:
        return translate(self.locale, msgid, **params)
