"""What WeChat's speech recognition heard, as a resident would have typed it: `附议十二。` → `附议 12`.

Chinese numerals become digits (cn2an), the recognition's punctuation goes (a trailing `。`, a `，`
between words), and a keyword is set apart from the number that follows it.
"""

from __future__ import annotations

import re
import unicodedata
import warnings

import cn2an

_PAUSES = re.compile(r"[，,、；;：:]+")
_TRAILING = re.compile(r"[。．.！!？?\s]+$")
_KEYWORD_NUMBER = re.compile(r"^([^\d\s/]+?)\s*(\d)")


def heard(recognition: str) -> str:
    text = unicodedata.normalize("NFKC", recognition).strip()
    text = _TRAILING.sub("", text)
    text = _PAUSES.sub(" ", text)
    with warnings.catch_warnings():  # cn2an warns of what it leaves as it is ("十二一")
        warnings.simplefilter("ignore")
        text = cn2an.transform(text, "cn2an")
    text = _KEYWORD_NUMBER.sub(r"\1 \2", text)
    return " ".join(text.split())
