"""Yishi on Telegram, end to end: the real `Application` polling the fake Bot API, on SQLite and
PostgreSQL — joining by deep link, a raise dialog by buttons with a photo, supports, a building
group bound by its leader, votes by buttons in the group and a secret one in private chats."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from storage.models import Ballot, Group, IssuePhoto, Participation, Support
from tests.fake_telegram import jpeg
from tests.harness import TestBot
from tests.telegram_live import Live, live

# residents of 1栋 (households 101, 101, 103, 104, 106), its leader (105), and 陈静 of 2栋
OUYANG, OUYANG_LI, WANG, ZHANG, LIU, LEADER, CHEN = 5001, 5002, 5003, 5004, 5005, 5105, 5201
STRANGER = 5999  # in the group, never joined
NAMES = {
    OUYANG: "欧阳明",
    OUYANG_LI: "欧阳丽",
    WANG: "王芳",
    ZHANG: "张强",
    LIU: "刘洋",
    LEADER: "孙丽华",
    CHEN: "陈静",
}
GROUP = -4001


def joined(tg: Live, *users: int) -> None:
    """Each opens the invite link: `/start join_CODE` in their private chat."""
    for user in users:
        tg.fake.user(user, NAMES[user])
        tg.say(user, f"/start join_{tg.code_of(NAMES[user])}")
        assert NAMES[user] in tg.fake.texts_to(user)[0], tg.fake.texts_to(user)


def press(tg: Live, user: int, chat: int, label: str) -> str:
    """`user` presses the button `label…` of the last message the bot sent to `chat`."""
    message_id, data = tg.data(chat, label)
    return tg.press(user, message_id, data)


def building_group(tg: Live, leader_status: str = "administrator", bot_is_admin: bool = False) -> None:
    tg.fake.user(STRANGER, "路人", started=False)
    members = {u: "member" for u in (OUYANG, OUYANG_LI, WANG, ZHANG, LIU, CHEN, STRANGER)}
    tg.fake.group(GROUP, members | {LEADER: leader_status}, bot_is_admin=bot_is_admin, title="1栋邻里群")


def raised_with_photo(tg: Live) -> int:
    """欧阳明 raises issue #1 by buttons, a photo with the details; the scope prompt's id."""
    tg.say(OUYANG, "/raise")
    tg.say(OUYANG, "1栋电梯经常停运")
    sent = tg.fake.send_photo_from(OUYANG, jpeg(1600, 1200), caption="这个月已经停了三次。")
    tg.settle()
    sizes = {(size["width"], size["height"]): size["file_id"] for size in sent["photo"]}
    assert tg.fake.fetched == [sizes[1280, 960]]  # the largest up to 1280 px, not the original
    scopes = tg.last(OUYANG)
    assert "范围" in scopes["text"]
    press(tg, OUYANG, OUYANG, "本楼")
    assert tg.fake.buttons_of(scopes["message_id"]) == []  # answered: its keyboard is gone
    press(tg, OUYANG, OUYANG, "发布")
    assert "已发布议题 #1" in tg.fake.texts_to(OUYANG)[-1]
    return scopes["message_id"]


def test_join_raise_with_a_photo_support_and_a_building_group_vote_by_buttons(bot: TestBot) -> None:
    with live(bot) as tg:
        joined(tg, OUYANG, OUYANG_LI, WANG, ZHANG, LIU, LEADER, CHEN)
        building_group(tg, leader_status="member")
        tg.say(LEADER, "/linkgroup", GROUP)
        assert tg.fake.texts_to(GROUP)[-1] == "只有本群管理员才能绑定本群。"
        tg.fake.groups[GROUP].members[LEADER] = "administrator"
        tg.say(LEADER, "/linkgroup@yishi_test_bot", GROUP)
        assert "本群已绑定到 梧桐社区/东片区/东一网格/1栋" in tg.fake.texts_to(GROUP)[-1]
        tg.say(WANG, "/issues@another_bot", GROUP)  # to another bot: not ours to answer
        assert len(tg.fake.texts_to(GROUP)) == 2

        raised_with_photo(tg)
        tg.say(OUYANG, "/issue 1")
        photo = [m for m in tg.fake.messages if m["kind"] == "photo"]
        assert len(photo) == 1 and photo[0]["chat_id"] == OUYANG and "1栋电梯经常停运" in photo[0]["text"]

        for user in (OUYANG_LI, WANG, ZHANG, LIU, LEADER):  # five accounts second it
            tg.say(user, "/support 1")
        with bot.db.transaction() as session:
            assert session.scalar(select(func.count(Support.id))) == 6
            assert session.scalar(select(func.length(IssuePhoto.data))) == len(jpeg(1600, 1200))
        assert any("已获 3 户附议，进入讨论" in text for text in tg.fake.texts_to(GROUP))

        tg.say(LEADER, "/openvote 1")  # the open-vote dialog by buttons, the duration typed
        press(tg, LEADER, LEADER, "同意")
        tg.say(LEADER, "3d")
        press(tg, LEADER, LEADER, "公开")
        press(tg, LEADER, LEADER, "按户")
        press(tg, LEADER, LEADER, "确认")
        vote = tg.last(GROUP)
        assert "开始表决" in vote["text"]
        assert [row[0]["text"] for row in vote["reply_markup"]["inline_keyboard"]] == ["同意", "反对", "弃权"]

        recorded = press(tg, WANG, GROUP, "同意")
        answer = tg.answer_to(recorded)
        assert (answer["text"], answer["show_alert"]) == ("您在议题 #1 的投票已记录：同意。", True)
        again = press(tg, WANG, GROUP, "同意")
        assert "早已记录" in tg.answer_to(again)["text"]
        other_building = press(tg, CHEN, GROUP, "同意")
        assert tg.answer_to(other_building)["text"] == "陈静 在议题 #1 的表决中没有投票权。"
        stranger = press(tg, STRANGER, GROUP, "反对")
        assert "尚未绑定居民名册" in tg.answer_to(stranger)["text"]
        with bot.db.transaction() as session:
            assert session.scalars(select(Ballot.choices)).all() == [[1]]
        assert tg.fake.unanswered == []  # every press answered (a second answer would be refused)

        bot.advance(timedelta(minutes=2))
        tg.tick()  # the vote message shows the turnout, edited in place
        edited = tg.fake.last_to(GROUP)
        assert (
            edited is not None
            and edited["message_id"] == vote["message_id"]
            and "参与：1/6" in edited["text"]
        )
        tg.say(LEADER, "/closevote 1")
        assert any("的表决已结束" in text for text in tg.fake.texts_to(GROUP))
        final = [m for m in tg.fake.messages if m["message_id"] == vote["message_id"]][-1]
        assert final["kind"] == "edit" and not final["reply_markup"]  # closed: no buttons any more


def test_in_english_a_multiple_choice_vote_by_buttons_and_a_secret_one_by_deep_link(bot_en: TestBot) -> None:
    bot = bot_en
    with live(bot) as tg:
        joined(tg, OUYANG, OUYANG_LI, WANG, ZHANG, LEADER)
        building_group(tg, bot_is_admin=True)
        tg.say(LEADER, "/linkgroup", GROUP)
        tg.say(OUYANG, "/raise")
        tg.say(OUYANG, "1栋电梯经常停运")
        tg.say(OUYANG, "Broken three times.")
        press(tg, OUYANG, OUYANG, "This building")
        press(tg, OUYANG, OUYANG, "Publish")
        for user in (WANG, ZHANG):
            tg.say(user, "/support 1")

        tg.say(LEADER, "/openvote 1")
        press(tg, LEADER, LEADER, "Several")
        tg.say(LEADER, "repair;replace;wait")
        tg.say(LEADER, "2")
        tg.say(LEADER, "3d")
        press(tg, LEADER, LEADER, "Open")
        press(tg, LEADER, LEADER, "Per household")
        press(tg, LEADER, LEADER, "Confirm")
        for label in ("repair", "replace", "wait"):
            last = press(tg, WANG, GROUP, label)
        assert tg.answer_to(last)["text"] == "You may choose at most 2 here."
        unticked = press(tg, WANG, GROUP, "repair")
        assert tg.answer_to(unticked)["text"] == "Your ballot on issue #1 is recorded: replace."
        with bot.db.transaction() as session:
            assert session.scalars(select(Ballot.choices)).all() == [[2]]

        tg.say(LEADER, "/closevote 1")
        assert any("has closed" in text for text in tg.fake.texts_to(GROUP))
        tg.say(LEADER, "/openvote 1")
        press(tg, LEADER, LEADER, "Agree")
        tg.say(LEADER, "3d")
        press(tg, LEADER, LEADER, "Secret")
        press(tg, LEADER, LEADER, "Per household")
        press(tg, LEADER, LEADER, "Confirm")
        link = tg.last(GROUP)["reply_markup"]["inline_keyboard"][-1][0]
        assert link["url"] == "https://t.me/yishi_test_bot?start=vote_2"

        typed = tg.fake.say(ZHANG, "/vote 1 1", GROUP)  # a secret choice typed in the group
        tg.settle()
        assert any(m["kind"] == "delete" and m["message_id"] == typed["message_id"] for m in tg.fake.messages)
        assert "secret ballot is cast in your private chat" in tg.fake.texts_to(GROUP)[-1]

        tg.say(WANG, "/start vote_2")  # the link opens the ballot in her private chat
        ballot = tg.last(WANG)
        press(tg, WANG, WANG, "☐ agree")
        assert tg.fake.buttons_of(ballot["message_id"])[0][0]["text"] == "☑ agree"
        press(tg, WANG, WANG, "Cast")
        assert "Your secret ballot on issue #1 is cast: agree." in tg.last(WANG)["text"]
        with bot.db.transaction() as session:
            assert session.scalar(select(func.count(Participation.id))) == 1
            assert session.scalar(select(Group.title)) == "1栋邻里群"
