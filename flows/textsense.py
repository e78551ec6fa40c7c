"""Text sense with jieba: keywords, a category hint and the duplicate search.

jieba is loaded once, lazily (the first issue raised pays ~1 s), and silently: its
logger is turned down and its import-time warnings are filtered by module.
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
import warnings
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from storage.models import Issue, IssueKeyword

# words a resident of a Chinese neighbourhood uses for its matters; jieba should not split them
VOCABULARY = (
    "电梯", "加装电梯", "停车", "停车位", "停车难", "充电桩", "电动车", "垃圾分类", "垃圾桶", "物业",
    "物业费", "漏水", "渗水", "楼道", "单元门", "门禁", "监控", "路灯", "绿化", "噪音", "广场舞",
    "外墙", "楼顶", "防水", "下水道", "化粪池", "消防通道", "飞线充电", "高空抛物", "老旧小区",
    "适老化", "无障碍", "快递柜", "健身器材", "宠物", "流浪猫", "违建", "群租", "维修基金", "业委会",
    "居委会", "网格员", "楼栋长", "停运", "太阳能", "晾衣", "自来水", "水压", "燃气", "暖气",
)  # fmt: skip

CATEGORIES: dict[str, tuple[str, ...]] = {
    "elevator": ("电梯", "加装电梯", "停运", "elevator", "lift"),
    "parking": ("停车", "停车位", "停车难", "车位", "充电桩", "电动车", "飞线充电", "parking"),
    "sanitation": ("垃圾", "垃圾分类", "垃圾桶", "化粪池", "下水道", "卫生", "garbage", "rubbish"),
    "property": ("物业", "物业费", "维修基金", "业委会", "property"),
    "water": ("漏水", "渗水", "防水", "自来水", "水压", "leak", "water"),
    "safety": ("门禁", "监控", "单元门", "消防通道", "高空抛物", "燃气", "安全", "路灯", "security"),
    "environment": ("绿化", "噪音", "广场舞", "宠物", "流浪猫", "noise", "green"),
}

STOP_WORDS = frozenset(
    [
        "的",
        "了",
        "和",
        "是",
        "在",
        "有",
        "也",
        "就",
        "都",
        "而",
        "及",
        "与",
        "着",
        "或",
        "一个",
        "没有",
        "我们",
        "你们",
        "他们",
        "这个",
        "那个",
        "这些",
        "那些",
        "因为",
        "所以",
        "但是",
        "如果",
        "已经",
        "经常",
        "非常",
        "还是",
        "可以",
        "需要",
        "希望",
        "建议",
        "问题",
        "情况",
        "现在",
        "目前",
        "一下",
        "一些",
        "进行",
        "大家",
        "我们",
        "自己",
        "什么",
        "怎么",
        "这样",
        "那样",
        "时候",
        "不是",
        "还有",
        "以及",
        "比较",
        "特别",
        "很多",
        "每天",
        "每次",
        "今天",
        "昨天",
        "明天",
        "本月",
        "这个月",
        "一直",
        "能否",
        "请",
        "尽快",
        "居民",
        "小区",
        "社区",
        "the",
        "a",
        "an",
        "of",
        "to",
        "and",
        "or",
        "in",
        "on",
        "at",
        "is",
        "are",
        "be",
        "for",
        "with",
        "this",
        "that",
        "it",
        "we",
        "our",
        "please",
    ]
)

_lock = threading.Lock()
_jieba: Any = None


def _tokenizer() -> Any:
    global _jieba
    if _jieba is None:
        with _lock, warnings.catch_warnings():
            if _jieba is None:
                warnings.simplefilter("ignore")
                import jieba

                jieba.setLogLevel(60)
                jieba.initialize()
                for word in VOCABULARY:
                    jieba.add_word(word, freq=20000)
                _jieba = jieba
    return _jieba


def warm_up() -> None:
    """Load jieba now (tests and benchmarks do this once, so no single call pays for it)."""
    _tokenizer()


_MEANINGFUL = re.compile(r"[\w]", re.UNICODE)


def keywords(text: str) -> list[str]:
    """The distinct words of a text a resident would recognise: no stop words, no lone numbers."""
    text = unicodedata.normalize("NFKC", text).lower()
    seen: dict[str, None] = {}
    for token in _tokenizer().cut_for_search(text):
        token = token.strip()
        if len(token) < 2 or token in STOP_WORDS or not _MEANINGFUL.search(token):
            continue
        if token.isdigit() or re.fullmatch(r"[\d.%]+", token):
            continue
        seen.setdefault(token[:64], None)
    return list(seen)


def category(words: list[str]) -> str | None:
    best, score = None, 0
    for name, hints in CATEGORIES.items():
        hits = sum(1 for w in words if w in hints)
        if hits > score:
            best, score = name, hits
    return best


_INDEX = IssueKeyword.__table__.insert()


def index_issue(session: Session, issue: Issue) -> None:
    """Keywords, their count and a category hint for a new issue, and its rows in the index."""
    words = keywords(f"{issue.title} {issue.details}")
    issue.keyword_count = len(words)
    issue.category = category(words)
    if issue.id is None:
        session.add(issue)
        session.flush()
    if words:
        session.execute(_INDEX, [{"issue_id": issue.id, "word": w} for w in words])


class Match(NamedTuple):
    id: int
    title: str
    score: float


_SHARED = func.count(IssueKeyword.word).label("shared")
_CANDIDATES = (
    select(Issue.id, Issue.title, Issue.keyword_count, _SHARED)
    .join(IssueKeyword, IssueKeyword.issue_id == Issue.id)
    .where(IssueKeyword.word.in_(bindparam("words", expanding=True)))
    .where(Issue.scope_id.in_(bindparam("scopes", expanding=True)))
    .where(Issue.status.in_(bindparam("statuses", expanding=True)))
    .group_by(Issue.id, Issue.title, Issue.keyword_count)
    .order_by(_SHARED.desc(), Issue.id.desc())
    .limit(bindparam("candidates"))
)


def similar(
    session: Session,
    text: str,
    scope_ids: list[int],
    statuses: frozenset[str],
    limit: int = 3,
    min_score: float = 0.25,
    exclude: set[int] | frozenset[int] = frozenset(),
) -> list[Match]:
    """Issues in the given scopes and statuses whose keywords overlap the text's (cosine of the sets)."""
    words = keywords(text)
    if not words or not scope_ids:
        return []
    params = {"words": words, "scopes": scope_ids, "statuses": sorted(statuses), "candidates": limit * 10}
    scored = []
    for issue_id, title, count, shared in session.execute(_CANDIDATES, params):
        score = shared / math.sqrt(len(words) * max(count, 1))
        if score >= min_score and issue_id not in exclude:
            scored.append(Match(issue_id, title, score))
    scored.sort(key=lambda m: (-m.score, -m.id))
    return scored[:limit]
