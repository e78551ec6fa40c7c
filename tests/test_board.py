"""The public board that `yishi serve` shows: a community's issues by stage, one issue with its
history, its notice for print, the public record, the audit chain and a hash looked up; nothing
that names a resident; everything escaped; in the visitor's language; read without ever taking
SQLite's write lock. (In a real browser: tests/test_board_browser.py.)"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape
from sqlalchemy import String, cast, insert, select, update
from sqlalchemy.exc import DBAPIError

from bot.app import AUDIT_EVERY
from flows import export, issues
from flows import settings as community_settings
from flows.errors import Refused
from flows.people import resident
from storage.db import Database
from storage.models import AuditLog, Household, Invite, IssuePhoto, Person, Scope
from tests.harness import TestBot, serving
from tests.test_decide import discussing, open_vote


@contextmanager
def board(bot: TestBot) -> Iterator[httpx.Client]:
    """The site of `yishi serve` on the bot's database, and a client of it (Chinese unless asked)."""
    with serving(bot.app, bot.app.config) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def decided(bot: TestBot) -> None:
    """Issue #1 (1栋) voted on openly per household, passed, and a task under way."""
    discussing(bot)
    open_vote(bot, "1", "3d", "1", "1", "1")
    for who in ("欧阳明", "李伟@1栋-102", "王芳", "张强"):
        bot.say("/vote 1 1", as_=who)
    assert "passed" in bot.say("/closevote 1", as_="孙丽华") or bot.issue(1).status == "passed"
    bot.say("/task 1 吴师傅 2026-12-10 联系电梯维保公司检修", as_="谢委员")
    bot.say("/progress 1 50 已联系维保公司", as_="吴师傅")


def page_text(html: str) -> str:
    """What a reader sees of a page: its text, tags and styles left out."""
    html = re.sub(r"<style>.*?</style>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_board_shows_the_issues_by_stage_with_their_support_vote_and_tasks(bot: TestBot) -> None:
    decided(bot)
    bot.say("/as 王芳")
    bot.raise_issue("2栋门禁坏了", scope="1")
    with board(bot) as site:
        front = site.get("/")
        assert front.status_code == 200 and "梧桐社区" in front.text
        whole = page_text(site.get("/c/1").text)
        assert "办理中 1" in whole and "征集附议 1" in whole and "全部 2" in whole
        assert "#2 2栋门禁坏了" in whole and "附议：1 户，需 3 户" in whole
        assert "已投票：4 / 6" in whole and "1. 同意 4" in whole and "联系电梯维保公司检修" in whole
        raised = page_text(site.get("/c/1", params={"stage": "raised"}).text)
        assert "2栋门禁坏了" in raised and "1栋电梯经常停运" not in raised
        one = site.get("/c/1/issues/1")
        assert one.status_code == 200 and one.headers["cache-control"].startswith("public, max-age=")
        shown = page_text(one.text)
        for fragment in (
            "征集附议",
            "讨论中",
            "表决中",
            "已通过，待办理",
            "每户一票",
            "记名投票",
            "50%",
        ):
            assert fragment in shown, fragment
        assert "居民评论 0 条" in shown and "打印张贴在楼栋公告栏的公示" in shown
        assert "已联系维保公司" not in shown  # the owner's words, as residents' are, only where shown
        by_building = page_text(site.get("/c/1", params={"scope": building_of(bot, "2栋")}).text)
        assert "全部 0" in by_building and "1栋电梯经常停运" not in by_building
        by_grid = page_text(site.get("/c/1", params={"scope": building_of(bot, "东一网格")}).text)
        assert "全部 2" in by_grid and "1栋电梯经常停运" in by_grid and "2栋门禁坏了" in by_grid
    with bot.db.transaction() as session:
        community_settings.put(session, 1, "public_comments", "on")
    with board(bot) as site:
        assert "已联系维保公司" in page_text(site.get("/c/1/issues/1").text)


def building_of(bot: TestBot, name: str) -> int:
    with bot.db.transaction() as session:
        found = session.scalar(select(Scope.id).where(Scope.name == name))
        assert found is not None
        return found


@pytest.mark.parametrize(
    "address",
    ["/c/99999999999999999999999", "/c/²", "/c/١", "/c/1/issues/99999999999999999999",
     "/c/1/issues/99999999999999999999/photo", "/c/1/issues/99999999999/notice", "/c/1/record.xml", "/c/-1"],
)  # fmt: skip
def test_an_address_no_page_has_is_the_404_page(bot: TestBot, address: str) -> None:
    with board(bot) as site:
        missing = site.get(address)
    assert missing.status_code == 404 and "找不到页面" in missing.text


@pytest.mark.parametrize(
    ("header", "shown"),
    [
        ("en; q=0.5, zh;q=0.9", "办理中"),
        ("en;q=0, zh-CN", "办理中"),
        ("en;q=nan, zh", "办理中"),
        ("en;q=inf, zh;q=0.1", "办理中"),
        ("fr, en-US;q=0.8", "Being carried out"),
        ("", "办理中"),
    ],
)
def test_the_browsers_language_is_read_as_browsers_send_it(bot: TestBot, header: str, shown: str) -> None:
    with board(bot) as site:
        assert shown in page_text(site.get("/c/1", headers={"Accept-Language": header}).text)


def test_a_vote_without_quorum_has_a_notice_until_a_second_vote_opens(bot: TestBot) -> None:
    discussing(bot)
    open_vote(bot, "1", "3d", "1", "1", "1")
    bot.say("/closevote 1", as_="孙丽华")  # nobody voted
    assert bot.issue(1).status == "no_quorum"
    with board(bot) as site:
        assert "表决无效：参加人数不足" in page_text(site.get("/c/1/issues/1/notice").text)
    open_vote(bot, "1", "3d", "1", "1", "1")
    assert bot.issue(1).status == "voting"
    with board(bot) as site:
        assert site.get("/c/1/issues/1/notice").status_code == 404  # the second vote decides
        assert "公示" not in page_text(site.get("/c/1/issues/1").text).split("经过")[0]


def test_the_notice_carries_the_rule_the_result_the_tasks_and_the_hash_a_resident_can_look_up(
    bot: TestBot,
) -> None:
    decided(bot)
    with bot.db.transaction() as session:
        closing = session.scalars(
            select(AuditLog).where(AuditLog.issue_id == 1, AuditLog.action == "status").order_by(AuditLog.id)
        ).all()
        row = next(r for r in closing if r.detail.get("to") == "passed")
        held, seq = row.hash, row.seq
    with board(bot) as site:
        notice = site.get("/c/1/issues/1/notice")
        assert notice.status_code == 200
        shown = page_text(notice.text)
        for fragment in (
            "公示",
            "一般事项",
            "超过 1/2",
            "6 户",
            "4 (67%)",
            "结果： 通过",
            "联系电梯维保公司检修",
            "期限",
        ):
            assert fragment in shown, fragment
        assert (
            held in notice.text and f"第 {seq} 行" in shown and "<svg" in notice.text
        )  # the hash and a QR code
        assert "@page { size: A4" in notice.text
        found = page_text(site.get("/c/1/audit", params={"hash": held.upper()}).text)
        assert f"在：它是链上第 {seq} 行" in found
        missing = page_text(site.get("/c/1/audit", params={"hash": "0" * 64}).text)
        assert "不在：本社区的链上没有这个哈希值。" in missing
        wrong = page_text(site.get("/c/1/audit", params={"hash": "<b>nope</b>"}).text)
        assert "这不是哈希值" in wrong
        assert site.get("/c/1/issues/2/notice").status_code == 404  # no such issue
    bot.say("/as 王芳")
    bot.raise_issue("2栋门禁坏了")
    with board(bot) as site:
        assert site.get("/c/1/issues/2/notice").status_code == 404  # not decided


def test_a_secret_ballot_shows_its_turnout_while_it_runs_and_its_counts_only_after_the_close(
    bot: TestBot,
) -> None:
    discussing(bot)
    open_vote(bot, "1", "3d", "2", "1", "1")  # a secret ballot per household
    for who in ("欧阳明", "李伟@1栋-102", "王芳", "张强"):
        bot.say("/vote 1 2", as_=who)
        bot.say("/yes")  # a secret choice typed is confirmed where the dialog asks
    with board(bot) as site:
        running = page_text(site.get("/c/1/issues/1").text)
        assert "不记名投票：票数在表决结束时才公布。" in running and "已投票：4 / 6" in running
        assert "表决结果" not in running and "目前票数" not in running and "反对 4" not in running
        assert all(
            o["votes"] is None
            for o in site.get("/c/1/record.json").json()["issues"][0]["polls"][0]["options"]
        )
    bot.say("/closevote 1", as_="孙丽华")
    with board(bot) as site:
        closed = site.get("/c/1/issues/1").text
        assert "2. 反对 4" in page_text(closed) and 'aria-label="表决结果"' in closed


def test_an_open_ballot_shows_its_counts_so_far(bot: TestBot) -> None:
    discussing(bot)
    open_vote(bot, "1", "3d", "1", "1", "1")
    bot.say("/vote 1 2", as_="欧阳明")
    with board(bot) as site:
        shown = site.get("/c/1/issues/1").text
        assert "以上为目前票数，结果以表决结束时为准。" in page_text(shown)
        assert re.search(r'class="count">1<', shown)


def all_pages(site: httpx.Client, *starts: str) -> dict[str, str]:
    """Every page of the site reachable from `starts` by its links and forms' first answers, each
    language's; the HTML (or text) of each, by address."""
    seen: dict[str, str] = {}
    queue = deque(starts)
    while queue:
        address = queue.popleft()
        if address in seen or len(seen) > 400:
            continue
        answer = site.get(address)
        assert answer.status_code in (200, 404), (address, answer.status_code)
        seen[address] = answer.text
        if "html" not in answer.headers.get("content-type", ""):
            continue
        for link in re.findall(r'(?:href|src|action)="([^"]+)"', answer.text):
            target = urljoin(address, link.replace("&amp;", "&"))
            if not urlsplit(target).netloc:
                queue.append(target)
    return seen


def test_no_page_names_a_resident_shows_a_room_by_a_name_or_an_invite_code(bot: TestBot) -> None:
    """The register's people renamed to marker names that no text of the product contains, after a
    whole cycle (support, comments, a vote, tasks, progress, ratings) and a secret ballot running;
    every page of the site, in both languages, with comments public, is searched for them."""
    decided(bot)
    bot.say("/comment 1 维保公司下周来", as_="王芳")
    bot.say("/done 1", as_="吴师傅")
    for who, score in (("欧阳明", 4), ("李伟@1栋-102", 5), ("王芳", 3)):
        bot.say(f"/rate 1 {score} 还行", as_=who)
    bot.say("/as 王芳")
    bot.raise_issue("2栋门禁坏了", scope="1")
    with bot.db.transaction() as session:
        community_settings.put(session, 1, "public_comments", "on")
        session.execute(update(Person).values(name="㐀标" + cast(Person.id, String)))
        markers = session.scalars(select(Person.name)).all()
        rooms = {
            (name, room)
            for name, room in session.execute(
                select(Person.name, Household.room).join(Household, Household.id == Person.household_id)
            )
        }
        codes = session.scalars(select(Invite.code)).all()
    assert len(markers) > 10 and len(codes) > 10
    with board(bot) as site:
        pages = all_pages(site, "/", "/?lang=en", "/c/1/record.csv", "/c/1/issues/1/notice?lang=en")
    assert any("/issues/1/notice" in address for address in pages) and len(pages) > 15
    for address, html in pages.items():
        assert "㐀标" not in html, address
        for code in codes:
            assert code not in html, (address, code)
        for name, room in rooms:
            assert f"{name}@" not in html and f"{room} {name}" not in html, address


def test_titles_and_comments_are_shown_as_text(bot: TestBot) -> None:
    with bot.db.transaction() as session:
        community_settings.put(session, 1, "public_comments", "on")
        author = session.scalar(select(Person).where(Person.name == "欧阳明"))
        building = session.scalar(select(Scope.id).where(Scope.name == "1栋"))
        issue, _ = issues.raise_issue(
            session, author, building, "<script>alert(1)</script>", "<b>详情</b>", bot.clock.now()
        )
        issues.comment(
            session, resident(session, author.id), issue.id, '"><img src=x onerror=alert(2)>', bot.clock.now()
        )
    with board(bot) as site:
        for address in ("/c/1", f"/c/1/issues/{issue.id}"):
            html = site.get(address).text
            assert "<script>alert" not in html and "<img src=x" not in html and "<b>详情" not in html
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "&lt;b&gt;详情&lt;/b&gt;" in site.get(f"/c/1/issues/{issue.id}").text


_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=_TEXT, said=_TEXT)
def test_any_title_or_comment_keeps_the_pages_whole(bot: TestBot, title: str, said: str) -> None:
    with bot.db.transaction() as session:
        community_settings.put(session, 1, "public_comments", "on")
        author = session.scalar(select(Person).where(Person.name == "欧阳明"))
        building = session.scalar(select(Scope.id).where(Scope.name == "1栋"))
        try:
            issue, _ = issues.raise_issue(session, author, building, title, "详情", bot.clock.now())
            comment = issues.comment(
                session, resident(session, author.id), issue.id, said, bot.clock.now()
            ).text
        except Refused:
            return  # a title or comment the bot refuses never reaches the board
        stored = issue.title
    with board(bot) as site:
        one = site.get(f"/c/1/issues/{issue.id}")
        front = site.get("/c/1")
    assert one.status_code == 200 and front.status_code == 200
    assert str(escape(stored)) in one.text and str(escape(stored)) in front.text
    assert one.text.rstrip().endswith("</html>") and one.text.count("<main>") == 1
    assert str(escape(comment)) in one.text


def test_the_visitors_language_from_the_address_or_the_browser_and_a_404_in_it(bot: TestBot) -> None:
    decided(bot)
    with board(bot) as site:
        english = site.get("/c/1", headers={"Accept-Language": "en-GB,en;q=0.9"})
        assert (
            "Being carried out 1" in page_text(english.text) and english.headers["content-language"] == "en"
        )
        assert english.headers["vary"] == "Accept-Language"
        chosen = site.get("/c/1", params={"lang": "en"}, headers={"Accept-Language": "zh-CN"})
        assert "Being carried out 1" in page_text(chosen.text)
        assert 'href="/c/1/issues/1?lang=en"' in chosen.text  # the choice is kept from page to page
        chinese = site.get("/c/1", headers={"Accept-Language": "fr, zh-TW;q=0.5"})
        assert "办理中 1" in page_text(chinese.text)
        missing = site.get("/c/9", headers={"Accept-Language": "en"})
        assert missing.status_code == 404 and "Not found" in missing.text
        assert "找不到页面" in site.get("/c/1/issues/99").text
        assert site.get("/nowhere", params={"lang": "en"}).status_code == 404


def test_the_public_record_is_the_export(bot: TestBot) -> None:
    decided(bot)
    with bot.db.transaction() as session:
        expected = export.record(session, None, bot.clock.now())
    with board(bot) as site:
        served = site.get("/c/1/record.json").json()
        csv_text = site.get("/c/1/record.csv")
    assert {k: v for k, v in served.items() if k != "generated_at"} == {
        k: v for k, v in expected.items() if k != "generated_at"
    }
    assert csv_text.headers["content-type"].startswith("text/csv") and csv_text.text == export.to_csv(
        expected
    )


def test_a_community_address_and_its_photo(bot: TestBot) -> None:
    decided(bot)
    with bot.db.transaction() as session:
        community_settings.put(session, 1, "slug", "wutong")
        session.add(
            IssuePhoto(issue_id=1, data=b"\x89PNG fake", mime="image/png", created_at=bot.clock.now())
        )
        with pytest.raises(Refused):
            community_settings.put(session, 1, "slug", "12")
    with board(bot) as site:
        shown = site.get("/c/wutong")
        assert shown.status_code == 200 and 'href="/c/wutong/issues/1"' in shown.text
        assert site.get("/c/1").status_code == 200  # the number still leads there
        issue = site.get("/c/wutong/issues/1").text
        assert 'src="/c/wutong/issues/1/photo"' in issue
        photo = site.get("/c/wutong/issues/1/photo")
        assert photo.content == b"\x89PNG fake" and photo.headers["content-type"] == "image/png"
        assert site.get("/c/wutong/issues/2/photo").status_code == 404


def test_the_clock_verifies_the_chain_and_the_board_says_when_and_where_it_broke(bot: TestBot) -> None:
    with board(bot) as site:
        assert "尚未核验" in page_text(site.get("/c/1/audit").text)
        decided(bot)  # the console steps the clock after each message: the first step verifies
        bot.advance(AUDIT_EVERY)
        bot.app.step({})
        shown = page_text(site.get("/c/1/audit").text)
        assert "核验：全部 14 行完好" in shown
        with bot.db.transaction() as session:
            session.execute(update(AuditLog).where(AuditLog.seq == 3).values(action="tampered"))
        bot.app.step({})  # within the hour: the last verdict stands
        assert "行完好" in page_text(site.get("/c/1/audit").text)
        bot.advance(AUDIT_EVERY)
        bot.app.step({})
        broken = page_text(site.get("/c/1/audit").text)
        assert "核验：第 3 行有误（" in broken


def test_pages_are_read_while_the_bot_holds_sqlite_write_lock(bot: TestBot) -> None:
    """A transaction of the bot holds SQLite's write lock: a page that began `BEGIN IMMEDIATE`
    would wait for it (30 s); a reading transaction does not wait at all."""
    if bot.db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock: PostgreSQL's readers never wait for writers")
    decided(bot)
    holding, done = threading.Event(), threading.Event()

    def writer() -> None:
        with bot.db.transaction() as session:
            session.execute(update(Scope).where(Scope.id == 1).values(name=Scope.name))
            holding.set()
            done.wait(20)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(10)
        with board(bot) as site:
            for address in (
                "/c/1",
                "/c/1/issues/1",
                "/c/1/issues/1/notice",
                "/c/1/audit",
                "/c/1/record.json",
            ):
                assert site.get(address, timeout=5).status_code == 200, address
    finally:
        done.set()
        thread.join(10)


def test_a_reading_transaction_refuses_to_write_on_postgresql(community: Database) -> None:
    if community.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no read-only transactions: a reading one is rolled back at its end")
    with community.reading() as session, pytest.raises(DBAPIError, match="read-only"):
        session.execute(insert(Scope).values(level="community", name="别处", path="别处"))
