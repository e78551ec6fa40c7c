"""SQL statements per message, counted like Django's `assertNumQueries`: each hot path's number
is written here per database, so that a change adding a statement fails until the number is
changed on purpose. `/issue N` does not grow with its comments."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from flows.messages import Incoming
from storage.db import Database
from tests.harness import TestBot
from tests.test_decide import discussing, open_vote


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements sent to the database inside the block (SAVEPOINT included; a BEGIN is
    not a statement here, on either database)."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)


def count(bot: TestBot, who: str, text: str) -> tuple[int, str]:
    """Statements of one message from `who` (already speaking once, so their account exists), and the reply."""
    bot.say(f"/as {who}")
    incoming = Incoming("console", bot.console.account_id, "console", text=text)
    with statements(bot.db) as seen:
        replies = bot.app.dispatcher.handle(incoming)
    return len(seen), "\n".join(r.text for r in replies)


def expected(bot: TestBot, sqlite: int, postgres: int) -> int:
    return sqlite if bot.db.engine.dialect.name == "sqlite" else postgres


def test_a_support(bot_en: TestBot) -> None:
    bot_en.say("/as 欧阳明")
    bot_en.raise_issue("1栋电梯经常停运")
    n, reply = count(bot_en, "王芳", "/support 1")
    assert "You support issue #1" in reply
    assert n == expected(bot_en, sqlite=7, postgres=8)


def test_a_comment(bot_en: TestBot) -> None:
    bot_en.say("/as 欧阳明")
    bot_en.raise_issue("1栋电梯经常停运")
    n, reply = count(bot_en, "王芳", "/comment 1 同意")
    assert "Comment C1 added" in reply
    # PostgreSQL: one more to tell the clock process that a message is queued (NOTIFY at commit)
    assert n == expected(bot_en, sqlite=6, postgres=8)


@pytest.mark.parametrize("secret", [False, True], ids=["open", "secret"])
def test_a_ballot(bot_en: TestBot, secret: bool) -> None:
    discussing(bot_en)
    open_vote(bot_en, "1", "3d", "2" if secret else "1", "1", "1")
    n, reply = count(bot_en, "王芳", "/vote 1 1")
    assert ("secret ballot" if secret else "recorded") in reply
    if secret:  # the participation looked for, and the sealed tally rewritten
        assert n == expected(bot_en, sqlite=6, postgres=8)
    else:
        assert n == expected(bot_en, sqlite=4, postgres=5)


def test_a_dialog_step(bot_en: TestBot) -> None:
    bot_en.say("/as 欧阳明")
    bot_en.say("/raise")
    n, reply = count(bot_en, "欧阳明", "楼道灯坏了")
    assert "describe" in reply
    assert n == expected(bot_en, sqlite=3, postgres=4)


def test_an_issue_with_its_comments_does_not_grow_with_them(bot_en: TestBot) -> None:
    bot_en.say("/as 欧阳明")
    bot_en.raise_issue("1栋电梯经常停运")
    authors = ["王芳", "张强", "李伟@1栋-102", "刘洋", "欧阳明"]
    for i in range(5):
        bot_en.say(f"/comment 1 第{i}条", as_=authors[i % 5])
    few, _ = count(bot_en, "王芳", "/issue 1")
    for i in range(5, 50):
        bot_en.say(f"/comment 1 第{i}条", as_=authors[i % 5])
    n, reply = count(bot_en, "王芳", "/issue 1")
    assert "Comments (50):" in reply and "第49条" in reply
    # one of them looks for the issue's photo (issue_photos, by primary key)
    assert n == few == expected(bot_en, sqlite=10, postgres=11)


def test_a_message_sent_and_the_look_at_what_is_next(bot_en: TestBot) -> None:
    """A comment's notice to the issue's raiser, sent on the console: four transactions (the plan,
    the claim, the mark, the look at what is due next with the groups' vote messages)."""
    bot_en.say("/as 欧阳明")
    bot_en.raise_issue("1栋电梯经常停运")
    bot_en.say("/as 王芳")
    incoming = Incoming("console", bot_en.console.account_id, "console", text="/comment 1 同意")
    bot_en.app.dispatcher.handle(incoming)
    begun: list[int] = []
    sa.event.listen(bot_en.db.engine, "begin", lambda _conn: begun.append(1))
    with statements(bot_en.db) as seen:
        _, sent = bot_en.app.step({"console": bot_en.console})
    assert sent == 1
    assert len(begun) == 4
    assert len(seen) == expected(bot_en, sqlite=7, postgres=7)
