"""Secret polls' running tallies are sealed until the close, judged as a reader of the database
would: the rows, two snapshots around one ballot, and on PostgreSQL the system columns."""

from __future__ import annotations

import logging
import os
import stat
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from bot.config import Config, ConfigError
from flows import register
from storage.db import Database
from storage.models import AuditLog, Base, Participation, Poll, PollOption
from storage.seal import BallotKey, SealBroken, new_key
from tests.conftest import START, empty_database
from tests.harness import REGISTER, TestBot
from tests.test_decide import discussing, open_vote

VOTERS = {"欧阳明": "1", "李伟@1栋-102": "2", "王芳": "3", "张强": "1"}
THREE = ("2", "甲方案;乙方案;丙方案", "3d", "2", "2", "1")  # single choice, secret, per person


def secret_poll(bot: TestBot) -> None:
    discussing(bot)
    assert "open until" in open_vote(bot, *THREE)
    for who in VOTERS:  # each has an account before anyone votes
        bot.say(f"/as {who}")


def rows(db: Database) -> dict[str, set[tuple]]:
    """Every row of every table, JSON values as text (to be compared as sets)."""
    with db.transaction() as session:
        return {
            t.name: {
                tuple(repr(v) if isinstance(v, dict | list) else v for v in r)
                for r in session.execute(select(t))
            }
            for t in Base.metadata.sorted_tables
        }


def sealed(db: Database) -> str:
    with db.transaction() as session:
        value = session.scalar(select(Poll.sealed))
        assert value is not None
        return value


def test_two_snapshots_around_a_ballot_differ_only_in_rows_that_say_nothing_of_the_choice(
    bot_en: TestBot,
) -> None:
    secret_poll(bot_en)
    before, seal_before = rows(bot_en.db), sealed(bot_en.db)
    bot_en.say("/vote 1 2", as_="欧阳明")
    after, seal_after = rows(bot_en.db), sealed(bot_en.db)
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"participations", "polls", "audit_log", "audit_chains"}
    assert before["poll_options"] == after["poll_options"]  # no option row is touched by a ballot
    (new_poll,) = after["polls"] - before["polls"]
    (old_poll,) = before["polls"] - after["polls"]
    columns = [c.name for c in Poll.__table__.columns]
    differing = {c for c, a, b in zip(columns, old_poll, new_poll, strict=True) if a != b}
    assert differing == {"sealed"}
    # the sealed value: as long as before, and unrecognisably new
    assert len(seal_after) == len(seal_before) and seal_after != seal_before
    (audit_row,) = after["audit_log"] - before["audit_log"]
    assert audit_row[[c.name for c in AuditLog.__table__.columns].index("detail")] == repr({"poll": 1})


def test_a_sealed_tally_keeps_its_length_whatever_the_counts(bot_en: TestBot) -> None:
    secret_poll(bot_en)
    lengths = {len(sealed(bot_en.db))}
    for who, choice in VOTERS.items():
        bot_en.say(f"/vote 1 {choice}", as_=who)
        lengths.add(len(sealed(bot_en.db)))
    assert len(lengths) == 1
    key = bot_en.app.key
    assert key.unseal(1, sealed(bot_en.db), 3) == [2, 1, 1]
    with pytest.raises(SealBroken):  # bound to its poll: copied onto another, it does not open
        key.unseal(2, sealed(bot_en.db), 3)


def test_a_key_that_does_not_open_the_tally_is_a_clear_error_at_the_close(
    bot_en: TestBot, caplog: pytest.LogCaptureFixture
) -> None:
    secret_poll(bot_en)
    for who, choice in VOTERS.items():
        bot_en.say(f"/vote 1 {choice}", as_=who)
    right = bot_en.app.key
    wrong = BallotKey(new_key())
    bot_en.app.key = bot_en.app.dispatcher.key = wrong
    before = rows(bot_en.db)
    with caplog.at_level(logging.ERROR, "yishi.votes"):
        reply = bot_en.say("/closevote 1", as_="孙丽华")
    assert "cannot be counted: this server's ballot key does not open its sealed tally" in reply
    assert rows(bot_en.db) == before  # nothing counted, the vote still open
    assert f"this key is {wrong.key_id}" in caplog.text and right.key_id in caplog.text
    assert "cannot be counted" in bot_en.say("/vote 1 1", as_="刘洋")  # nor a ballot added
    # at the deadline the close is tried, logged, and tried again once the key is back
    bot_en.advance(timedelta(days=3))
    with caplog.at_level(logging.ERROR, "yishi.due"):
        bot_en.say("/issue 1", as_="孙丽华")
    assert "due work close_poll" in caplog.text
    bot_en.app.key = bot_en.app.dispatcher.key = right
    bot_en.say("/issue 1")
    with bot_en.db.transaction() as session:
        counted = session.execute(
            select(PollOption.number, PollOption.votes).order_by(PollOption.number)
        ).all()
        assert [tuple(v) for v in counted] == [(1, 2), (2, 1), (3, 1)]
        assert session.scalar(select(Poll.closed_at)) is not None


def test_a_poll_opened_before_sealing_is_sealed_by_its_next_ballot(bot_en: TestBot) -> None:
    """Migration 0005 leaves a secret poll under way with its plain tallies: its next ballot
    seals them (and clears the option rows), and the close counts every ballot."""
    secret_poll(bot_en)
    with bot_en.db.transaction() as session:  # as the code of before would have left it
        session.execute(sa.update(Poll).values(sealed=None))
        session.execute(sa.update(PollOption).where(PollOption.number == 3).values(votes=2))
    bot_en.say("/vote 1 1", as_="欧阳明")
    with bot_en.db.transaction() as session:
        assert session.scalars(select(PollOption.votes)).all() == [0, 0, 0]
    assert bot_en.app.key.unseal(1, sealed(bot_en.db), 3) == [1, 0, 2]
    bot_en.say("/vote 1 2", as_="王芳")
    assert "[3] 丙方案 — 2" in bot_en.say("/closevote 1", as_="孙丽华")


def test_the_key_file_is_made_at_first_need_for_its_owner_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "yishi-ballot.key"
    key = BallotKey("", path)
    assert not path.exists()  # nothing before it is needed
    with caplog.at_level(logging.WARNING, "yishi.seal"):
        value = key.seal(7, [1, 2])
        key.seal(7, [3, 4])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert caplog.text.count("made a new ballot key") == 1 and "YISHI_BALLOT_KEY" in caplog.text
    caplog.clear()
    again = BallotKey("", path)  # a second process reads the same key, silently
    assert again.unseal(7, value, 2) == [1, 2] and not caplog.text
    assert BallotKey(path.read_text().strip()).unseal(7, value, 2) == [1, 2]  # the same as the variable
    path.write_text("not a key\n")
    with pytest.raises(ValueError, match=str(path)):
        BallotKey("", path).seal(7, [0])


@pytest.mark.parametrize("round_", range(5))
def test_processes_starting_at_once_all_take_one_whole_key(tmp_path: Path, round_: int) -> None:
    """Twelve starting at the same moment: one key file, whole, and every one of them holds it
    (a file made first and written after could be read empty by another)."""
    path = tmp_path / "yishi-ballot.key"
    start, ids, errors = threading.Barrier(12), [], []

    def first_need() -> None:
        start.wait()
        try:
            ids.append(BallotKey("", path).key_id)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_need) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == [] and len(ids) == 12 and len(set(ids)) == 1
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no draft left behind
    assert BallotKey(path.read_text()).key_id == ids[0]


def test_a_malformed_ballot_key_in_the_environment_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="YISHI_BALLOT_KEY"):
        Config.from_environ({"YISHI_BALLOT_KEY": "short"}, env_file="")
    good = new_key()
    config = Config.from_environ({"YISHI_BALLOT_KEY": good, "YISHI_BALLOT_KEY_FILE": "/k"}, env_file="")
    assert (config.ballot_key, config.ballot_key_file) == (good, "/k")
    assert good not in repr(config)


# --- PostgreSQL: what the system columns say ------------------------------------------------------


def _system(db: Database, table: str) -> list[tuple[int, str]]:
    with db.engine.connect() as conn:
        return [
            (int(x), str(c))
            for x, c in conn.exec_driver_sql(f"SELECT xmin::text::bigint, ctid::text FROM {table}")
        ]


def _voter_xids(db: Database) -> set[int]:
    """Transaction ids found on rows that name a voter."""
    with db.engine.connect() as conn:
        found = conn.exec_driver_sql(
            "SELECT xmin::text::bigint FROM participations UNION "
            "SELECT xmin::text::bigint FROM audit_log WHERE actor_id IS NOT NULL"
        )
        return {int(x) for (x,) in found}


def _none_or_all(db: Database) -> None:
    options = [x for x, _ in _system(db, "poll_options")]
    for xid in _voter_xids(db):
        assert options.count(xid) in (0, len(options)), (xid, options)


def test_no_transaction_of_a_voter_marks_some_options_and_not_others(postgres_url: str) -> None:
    db = Database(postgres_url)
    empty_database(db)
    with db.transaction() as session:
        register.import_file(session, REGISTER.read_bytes(), START)
    bot = TestBot(db, START, locale="en")
    secret_poll(bot)
    ctids = [c for _, c in _system(db, "poll_options")]
    for who, choice in VOTERS.items():
        bot.say(f"/vote 1 {choice}", as_=who)
        _none_or_all(db)
    assert [c for _, c in _system(db, "poll_options")] == ctids  # ballots move no option row
    with db.transaction() as session:
        assert session.scalar(select(sa.func.count(Participation.id))) == 4
    bot.say("/closevote 1", as_="孙丽华")
    _none_or_all(db)
    closer = {x for x, _ in _system(db, "poll_options")}
    assert len(closer) == 1  # the close rewrote every option row in one transaction
    with db.transaction() as session:
        counted = session.execute(
            select(PollOption.number, PollOption.votes).order_by(PollOption.number)
        ).all()
    assert [tuple(v) for v in counted] == [(1, 2), (2, 1), (3, 1)]
    db.dispose()
