"""Rights: every command of this stage tried by someone without the right is refused and changes nothing."""

from __future__ import annotations

import pytest

from flows import register
from tests.conftest import START
from tests.harness import TestBot

NOT_REGISTERED = "You are not in the register yet."
NOT_RESIDENT = "Only residents with a home in the register can do this."
NOT_LEADER = "Only building leaders, grid workers and committee members can do this."
NOT_COMMITTEE = "Only committee members can do this."
OTHER_COMMUNITY = "community,area,grid,building,room,name,role\n杏花社区,北片区,北一网格,9栋,901,钱多多,resident|committee\n"

CASES = [
    # (who, command, refusal)
    ("", "/raise", NOT_REGISTERED),
    ("", "/issues", NOT_REGISTERED),
    ("", "/issue 1", NOT_REGISTERED),
    ("", "/support 1", NOT_REGISTERED),
    ("", "/comment 1 路过", NOT_REGISTERED),
    ("", "/report C1", NOT_REGISTERED),
    ("", "/review C1 keep", NOT_REGISTERED),
    ("", "/withdraw 1", NOT_REGISTERED),
    ("", "/escalate 1", NOT_REGISTERED),
    ("", "/refer 1 区政府", NOT_REGISTERED),
    ("", "/merge 2 1", NOT_REGISTERED),
    ("", "/my", NOT_REGISTERED),
    ("吴师傅", "/raise", NOT_RESIDENT),
    ("吴师傅", "/support 1", NOT_RESIDENT),
    ("吴师傅", "/comment 1 我来修", "only its residents can comment"),
    ("吴师傅", "/report C1", NOT_RESIDENT),
    ("吴师傅", "/withdraw 1", NOT_RESIDENT),
    ("吴师傅", "/escalate 1", NOT_LEADER),
    ("吴师傅", "/review C1 remove", NOT_COMMITTEE),
    ("吴师傅", "/refer 1 区政府", NOT_COMMITTEE),
    ("吴师傅", "/merge 2 1", NOT_COMMITTEE),
    ("陈静", "/support 1", "only its residents can support it"),
    ("陈静", "/comment 1 路过", "only its residents can comment"),
    ("陈静", "/withdraw 1", "Only the author of issue #1 can withdraw it."),
    ("陈静", "/escalate 1", NOT_LEADER),
    ("陈静", "/review C1 keep", NOT_COMMITTEE),
    ("陈静", "/refer 1 区政府", NOT_COMMITTEE),
    ("陈静", "/merge 2 1", NOT_COMMITTEE),
    ("李伟@1栋-102", "/withdraw 1", "Only the author of issue #1 can withdraw it."),
    ("马建国", "/escalate 1", "Only the building leader, the grid worker or the committee responsible"),
    ("郑海燕", "/escalate 1", "Only the building leader, the grid worker or the committee responsible"),
    ("郑海燕", "/comment 1 路过", "only its residents can comment"),
    ("谢委员", "/withdraw 1", "Only the author of issue #1 can withdraw it."),
    ("孙丽华", "/review C1 keep", NOT_COMMITTEE),
    ("孙丽华", "/merge 2 1", NOT_COMMITTEE),
    ("林晓东", "/refer 1 区政府", NOT_COMMITTEE),
    ("钱多多", "/issue 1", "There is no issue #1."),
    ("钱多多", "/support 1", "There is no issue #1."),
    ("钱多多", "/comment 1 路过", "There is no issue #1."),
    ("钱多多", "/report C1", "There is no comment C1."),
    ("钱多多", "/review C1 keep", "There is no comment C1."),
    ("钱多多", "/merge 2 1", "There is no issue #2."),
    ("钱多多", "/refer 1 区政府", "There is no issue #1."),
]


@pytest.fixture
def stage(bot_en: TestBot) -> TestBot:
    with bot_en.db.transaction() as session:
        register.import_file(session, OTHER_COMMUNITY.encode(), START)
    for author, title in (("欧阳明", "1栋电梯经常停运"), ("王芳", "1栋楼道堆物")):
        bot_en.say(f"/as {author}")
        bot_en.raise_issue(title)
    bot_en.say("/comment 1 物业电话打不通", as_="李伟@1栋-102")
    for who in {w for w, _, _ in CASES}:
        bot_en.say(f"/as {who}")  # every account exists before the snapshot
    return bot_en


def test_every_command_is_refused_without_the_right(stage: TestBot) -> None:
    before = stage.snapshot()
    for who, command, refusal in CASES:
        stage.say(f"/as {who}")
        reply = stage.say(command)
        assert refusal in reply, f"{who or 'unbound'}: {command} → {reply!r}"
    assert stage.snapshot() == before
