"""Arbitrary text from arbitrary members of the register never breaks the dispatcher.

jieba is loaded once before the session (conftest), and deadlines are off, so the test
is steady on a slow two-core machine.
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from flows.clock import FixedClock
from flows.messages import Incoming
from handlers.commands import COMMANDS
from handlers.dispatch import APOLOGY, Dispatcher, parse
from locales import translate
from storage.db import Database
from storage.models import Account, DialogState, Person
from tests.conftest import START
from tests.harness import TestBot, ballot_key

EXOTIC = st.sampled_from(
    [
        "😀",
        "👨‍👩‍👧",
        "\u200f",
        "\u202e",
        "مرحبا",
        "\x00",
        "\x1b[31m",
        "\ufeff",
        "１２",
        "＃",
        "፩",
        "𐩀",
        "²",
        "/",
        "　",
        "\n",
    ]
)
TEXT = st.one_of(
    st.text(max_size=200),
    st.lists(st.one_of(st.text(max_size=5), EXOTIC), max_size=30).map("".join),
    st.text(min_size=1, max_size=3).map(lambda s: s * 4000),  # ~10 KB and more
)
WORDS = [f"/{c.name}" for c in COMMANDS] + [a for c in COMMANDS for a in c.aliases]
COMMAND_LINE = st.tuples(st.sampled_from(WORDS), TEXT).map(lambda p: f"{p[0]} {p[1]}")
SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def members(bot: TestBot) -> tuple[Database, list[str]]:
    """Every person of the register with a bound account, and an issue and a comment to aim at."""
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运", "停了三次。")
    bot.say("/comment 1 同意", as_="李伟@1栋-102")
    with bot.db.transaction() as session:
        for person in session.scalars(select(Person)):
            if session.scalar(select(Account).where(Account.person_id == person.id)) is None:
                session.add(
                    Account(
                        channel="test", external_id=f"p{person.id}", person_id=person.id, created_at=START
                    )
                )
        accounts = [
            a.external_id for a in session.scalars(select(Account).where(Account.person_id.is_not(None)))
        ]
    return bot.db, accounts


def _dispatcher(db: Database) -> Dispatcher:
    return Dispatcher(db, FixedClock(START), ballot_key())


def _channel(external_id: str) -> str:
    return "console" if external_id.startswith("person:") else "test"


@given(data=st.data())
@SETTINGS
def test_no_input_makes_the_dispatcher_raise(
    members: tuple[Database, list[str]], data: st.DataObject
) -> None:
    db, accounts = members
    who = data.draw(st.sampled_from(accounts))
    text = data.draw(st.one_of(TEXT, COMMAND_LINE))
    payload = data.draw(st.one_of(st.none(), st.just("v:1:2"), st.text(max_size=20)))
    replies = _dispatcher(db).handle(Incoming(_channel(who), who, who, text=text, payload=payload))
    apologies = {translate(loc, APOLOGY) for loc in ("zh_CN", "en")}
    assert all(r.text not in apologies for r in replies), (text, replies)


@given(data=st.data())
@SETTINGS
def test_plain_text_changes_nothing(
    members: tuple[Database, list[str]], bot: TestBot, data: st.DataObject
) -> None:
    db, accounts = members
    with db.transaction() as session:
        session.query(DialogState).delete()
    who = data.draw(st.sampled_from(accounts))
    text = data.draw(TEXT.filter(lambda s: parse(unicodedata.normalize("NFKC", s).strip(), False) is None))
    # the account has written lately (which account a person uses is kept, to the hour)
    _dispatcher(db).handle(Incoming(_channel(who), who, who, text="/help"))
    before = bot.snapshot()
    _dispatcher(db).handle(Incoming(_channel(who), who, who, text=text))
    assert bot.snapshot() == before
