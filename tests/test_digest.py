"""Digests: the committee daily at 08:00 local, leaders weekly, residents who ask; nothing for an empty day."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import func, select

from flows import audit, digest, people, textsense
from storage.models import DueWork, Outbox, Scope
from tests.harness import TestBot, ballot_key


def busy_day(bot: TestBot) -> None:
    """Two issues and a lively discussion of the lift on 1 December (Tuesday) in 1栋."""
    bot.say("/as 欧阳明")
    bot.raise_issue("1栋电梯经常停运", "电梯这个月停运三次，老人上下楼困难。")
    bot.say("/as 王芳")
    bot.raise_issue("1栋楼道堆放杂物", "楼道堆放杂物，消防通道堵塞。")
    for who, text in (
        ("李伟@1栋-102", "电梯停运太频繁了"),
        ("张强", "电梯维保公司要换"),
        ("刘洋", "楼道杂物也要清理"),
    ):
        bot.say(f"/comment 1 {text}", as_=who)
    bot.say("/support 1", as_="李伟@1栋-102")
    bot.say("/support 1", as_="王芳")


def test_the_committee_reads_a_daily_digest_at_eight_local(bot_en: TestBot) -> None:
    bot_en.say("/as 周书记")  # a committee member with an account
    busy_day(bot_en)
    # START is 10:00 in Asia/Shanghai: the next 08:00 there is 00:00 UTC on 2 December
    assert "Digest" not in bot_en.say("/clock +21h")
    morning = bot_en.say("/clock +1h")
    assert "[→ 周书记] Digest of your scopes (摘要)" in morning
    assert "From 2026-12-01 08:00 to 2026-12-02 08:00" in morning
    assert "New issues:\n#1 1栋电梯经常停运" in morning and "#2 1栋楼道堆放杂物" in morning
    assert "Now in discussion:\n#1 1栋电梯经常停运" in morning
    assert "Hot topics: 电梯" in morning
    assert "[→ 欧阳明] Digest" not in morning  # a resident who did not ask
    with bot_en.db.transaction() as session:  # the community's head as it stood when it was sent
        head = audit.head(session, session.scalar(select(Scope.id).where(Scope.level == "community")))
    assert f"The community's record stands at entry #{head.seq}, hash {head.hash}." in morning
    quiet = bot_en.say("/clock +1d")  # a day with nothing to say sends nothing
    assert "Digest" not in quiet
    assert "https://" not in morning  # no public board served


def test_a_digest_ends_with_the_link_to_the_public_board(bot_en: TestBot) -> None:
    bot_en.app.config = replace(bot_en.app.config, public_url="https://yishi.example.org")
    bot_en.say("/as 周书记")
    busy_day(bot_en)
    morning = bot_en.say("/clock +22h")
    digest_ = morning[morning.index("[→ 周书记] Digest") :]
    assert digest_.splitlines()[-1] == "https://yishi.example.org/c/1"


def test_two_runs_plan_and_send_each_digest_once(bot_en: TestBot) -> None:
    bot_en.say("/as 周书记")
    busy_day(bot_en)
    bot_en.advance(timedelta(hours=22))
    from flows import due

    for _ in range(3):
        due.run_due(bot_en.db, bot_en.clock.now(), ballot_key(), "Asia/Shanghai")
    with bot_en.db.transaction() as session:
        keys = session.scalars(
            select(DueWork.key).where(DueWork.kind == "digest", DueWork.key.endswith("2026-12-02"))
        ).all()
        sent = session.scalar(
            select(func.count()).select_from(Outbox).where(Outbox.msgid.startswith("Digest"))
        )
    assert len(keys) == 1 and sent == 1


def test_leaders_on_monday_and_residents_who_ask(bot_en: TestBot) -> None:
    bot_en.say("/as 孙丽华")
    bot_en.say("/as 王芳")
    assert "weekly digest" in bot_en.say("/digest on")
    busy_day(bot_en)
    bot_en.say("/as 张强")
    assert "Only residents" not in bot_en.say("/digest off")
    before_monday = bot_en.say("/clock +5d")  # to Sunday 6 December, 10:00 local
    assert "[→ 孙丽华] Digest" not in before_monday
    monday = bot_en.say("/clock +22h")  # Monday 7 December, 08:00 local
    assert "[→ 孙丽华] Digest of your scopes" in monday and "[→ 王芳] Digest of your scopes" in monday
    assert monday.count("The community's record stands at entry #") == 2
    assert "[→ 张强] Digest" not in monday


def test_digest_on_demand(bot_en: TestBot) -> None:
    busy_day(bot_en)
    bot_en.advance(timedelta(minutes=5))
    assert "The digest on demand is for building leaders and the committee" in bot_en.say(
        "/digest", as_="欧阳明"
    )
    reply = bot_en.say("/digest", as_="孙丽华")
    assert reply.startswith("Digest of your scopes (摘要)") and "New issues:" in reply
    assert "Usage: /digest" in bot_en.say("/digest maybe")
    assert "Nothing new in your scopes" in bot_en.say("/digest", as_="郑海燕")  # 西一网格: quiet


def test_keywords_of_the_week_are_words_a_resident_recognises(bot: TestBot) -> None:
    busy_day(bot)
    with bot.db.transaction() as session:
        reader = people.find(session, "周书记")
        found = digest.collect(
            session, reader, bot.clock.now() - timedelta(days=1), bot.clock.now() + timedelta(minutes=1)
        )
        topics = found.topics
    assert topics[0] == "电梯" and "楼道" in topics
    for word in topics:
        assert word not in textsense.STOP_WORDS and not word.isdigit() and len(word) >= 2


def test_eight_in_shanghai_is_midnight_utc(bot: TestBot) -> None:
    with bot.db.transaction() as session:
        moments = digest.due_times(
            session, 1, "Asia/Shanghai", bot.clock.now(), bot.clock.now() + timedelta(days=2)
        )
    assert [m.isoformat() for m in moments] == ["2026-12-02T00:00:00+00:00", "2026-12-03T00:00:00+00:00"]
