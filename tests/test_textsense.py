"""Keywords a resident would recognise, category hints, and the duplicate search."""

from __future__ import annotations

import pytest

from flows import textsense


def test_keywords_keep_community_words_and_drop_noise() -> None:
    words = textsense.keywords("1栋电梯经常停运，这个月已经停了3次！！希望尽快加装电梯")
    assert "电梯" in words and "停运" in words and "加装电梯" in words
    for noise in ("经常", "这个月", "已经", "希望", "尽快", "3", "1", "！！"):
        assert noise not in words
    assert all(len(w) >= 2 for w in words)


def test_keywords_of_full_width_and_english_text() -> None:
    assert "parking" in textsense.keywords("ＰＡＲＫＩＮＧ at night is impossible")
    assert textsense.keywords("１２３ ４５６") == []


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("电梯又坏了", "elevator"),
        ("晚上没有停车位，电动车飞线充电", "parking"),
        ("楼顶漏水，墙面渗水", "water"),
        ("垃圾分类投放点太远", "sanitation"),
        ("今天天气不错", None),
    ],
)
def test_category_hints(text: str, category: str | None) -> None:
    assert textsense.category(textsense.keywords(text)) == category
