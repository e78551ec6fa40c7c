"""The dispatcher's promises: an unexpected exception is logged with its update and answered
with an apology, vote arguments never reach the log, and nothing of the failed message is kept."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from flows import issues as flow
from flows import register
from flows.messages import Incoming
from handlers.dispatch import parse, redact
from storage.db import Database
from storage.models import Support
from tests.conftest import START, empty_database
from tests.harness import REGISTER, TestBot


def test_an_unexpected_error_is_logged_and_answered_with_an_apology(
    bot: TestBot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运", "停了三次。")
    bot.say("/as 李伟@1栋-102")

    def broken(*args: object) -> object:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(flow, "_reach_threshold", broken)
    with caplog.at_level(logging.ERROR, logger="yishi.dispatch"):
        reply = bot.say("/support 1")
    assert reply == "抱歉，系统出现问题，未做任何更改。请稍后再试。"
    record = next(r for r in caplog.records if r.name == "yishi.dispatch")
    assert "/support 1" in record.getMessage() and record.exc_info is not None
    assert bot.count(Support) == 1  # the failed support was rolled back


def test_vote_arguments_and_payloads_are_redacted() -> None:
    for text in (
        "/vote 12 2",
        "/VOTE@yishi_bot 12 1 3",
        "投票 12 同意",
        "/proxyvote 12 王芳 1",
        "代投 12 王芳 2",
    ):
        shown = redact(Incoming("telegram", "1", "1", text=text))
        assert "[redacted]" in shown.text and "12" not in shown.text, shown
    assert redact(Incoming("telegram", "1", "1", payload="v:12:3")).payload == "v:[redacted]"
    assert redact(Incoming("telegram", "1", "1", text="/support 12")).text == "/support 12"


@pytest.mark.parametrize(
    ("text", "name", "args"),
    [
        ("/support 7", "support", "7"),
        ("/support@yishi_bot 7", "support", "7"),
        ("/SUPPORT 7", "support", "7"),
        ("附议 7", "support", "7"),
        ("附议7", "support", "7"),
        ("查看#7", "issue", "#7"),
        ("评论 7 很好", "comment", "7 很好"),
        ("举报C3", "report", "C3"),
    ],
)
def test_commands_and_keywords_are_recognised(text: str, name: str, args: str) -> None:
    parsed = parse(text, is_group=False)
    assert parsed is not None and parsed.command is not None
    assert (parsed.command.name, parsed.args) == (name, args)


def test_plain_text_and_group_keywords_are_not_commands() -> None:
    assert parse("附议这个想法不错", is_group=False) is None
    assert parse("附议 7", is_group=True) is None
    unknown = parse("/frob 1", is_group=False)
    assert unknown is not None and unknown.command is None and unknown.word == "/frob"


@pytest.mark.parametrize("text", ["/issue ፩", "/support 𐩀", "/vote 1 ፩", "/report C፩", "/progress ፩ 5 x"])
def test_digits_of_other_scripts_are_not_numbers(bot_en: TestBot, text: str) -> None:
    bot_en.say("/as 欧阳明")
    reply = bot_en.say(text)
    assert reply and "Sorry" not in reply  # a clear refusal, not an apology for a crash


def test_a_connection_the_database_dropped_costs_the_resident_nothing(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No ping before every message: a dropped connection (a PostgreSQL restart) fails its first
    statement, and the message is handled once more on a new one."""
    db = Database(postgres_url)
    empty_database(db)
    with db.transaction() as session:
        register.import_file(session, REGISTER.read_bytes(), START)
    bot = TestBot(db, START)
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运", "停了三次。")
    bot.say("/as 王芳")
    other = sa.create_engine(bot.db.engine.url)  # the pooled connections dropped by the server
    with other.connect() as conn:
        dropped = conn.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).scalar()
    other.dispose()
    assert dropped
    with caplog.at_level(logging.WARNING, logger="yishi.dispatch"):
        reply = bot.say("/support 1")
    assert reply.startswith("您已附议议题 #1"), reply
    assert "the database connection was lost" in caplog.text
    db.dispose()
