"""What people send Telegram besides text and buttons, and what the platform sends besides
people: each gets a clear answer or is ignored on purpose, nothing is stored half, and no
exception escapes — also for arbitrary updates driven through the real `Application`."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from telegram import Update
from telegram.ext import Application, TypeHandler

from bot.channels.telegram.runner import ByPerson, Edge, application
from bot.channels.telegram.sender import TelegramChannel
from storage.models import DialogState, HandledUpdate, Issue
from tests.fake_telegram import FakeTelegram, jpeg, running
from tests.harness import TestBot
from tests.telegram_live import Live, live
from tests.test_fuzz import TEXT, WORDS
from tests.test_telegram_bot import GROUP, NAMES, OUYANG, WANG, joined
from tests.test_telegram_web import SECRET, request, served

OTHER_BOT = 7777
SUPERGROUP = -1001234567890


def state_of(bot: TestBot) -> dict:
    """Every table but the record of updates seen: what bad input must leave as it was."""
    return {name: rows for name, rows in bot.snapshot().items() if name != HandledUpdate.__tablename__}


def test_what_is_not_text_gets_a_clear_answer_and_changes_nothing(bot_en: TestBot) -> None:
    bot = bot_en
    with live(bot) as tg:
        joined(tg, OUYANG)
        before = state_of(bot)
        for content in (
            {"sticker": {"file_id": "st1", "file_unique_id": "u1", "width": 512, "height": 512, "is_animated": False, "is_video": False, "type": "regular"}},
            {"voice": {"file_id": "vo1", "file_unique_id": "u2", "duration": 3}},
            {"location": {"latitude": 31.2, "longitude": 121.5}},
            {"document": {"file_id": "do1", "file_unique_id": "u3", "file_name": "a.pdf"}},
        ):  # fmt: skip
            tg.fake.inject({"message": tg.fake.incoming(OUYANG, **content)})
            tg.settle()
            assert tg.fake.texts_to(OUYANG)[-1].startswith(
                "I read text and buttons, and a photo while an issue is raised"
            )
        tg.fake.send_photo_from(OUYANG, jpeg(800, 600))
        tg.settle()
        assert "I keep a photo only while an issue is raised" in tg.fake.texts_to(OUYANG)[-1]
        tg.say(OUYANG, "议" * 100_000)  # 100,000 characters: read as plain text, and answered
        assert (
            tg.fake.texts_to(OUYANG)[-1]
            == "I did not understand that. Send /help for the commands you can use."
        )
        tg.say(OUYANG, "/comment 1 " + "议" * 100_000)
        assert tg.fake.texts_to(OUYANG)[-1] == "There is no issue #1."
        assert state_of(bot) == before


def test_an_edited_message_is_answered_and_never_answers_a_dialog_step(bot_en: TestBot) -> None:
    bot = bot_en
    with live(bot) as tg:
        joined(tg, OUYANG)
        tg.say(OUYANG, "/raise")
        typed = tg.fake.say(OUYANG, "电梯坏了")
        tg.settle()
        before = state_of(bot)
        tg.fake.inject({"edited_message": typed | {"text": "电梯又坏了", "edit_date": typed["date"] + 5}})
        tg.settle()
        assert tg.fake.texts_to(OUYANG)[-1].startswith("I do not read a message again once it is edited")
        assert state_of(bot) == before


def test_an_old_keyboard_loses_its_buttons_and_a_forged_button_answers_nothing(bot_en: TestBot) -> None:
    bot = bot_en
    with live(bot) as tg:
        joined(tg, OUYANG)
        tg.say(OUYANG, "/raise")
        tg.say(OUYANG, "1栋电梯经常停运")
        tg.say(OUYANG, "停了三次。")
        scopes = tg.last(OUYANG)
        assert scopes["reply_markup"]["inline_keyboard"]
        tg.say(OUYANG, "1")  # answered by typing: the prompt's buttons are taken away
        assert tg.fake.buttons_of(scopes["message_id"]) == []
        confirm = tg.last(OUYANG)["message_id"]  # the confirm prompt
        tg.say(OUYANG, "/cancel")
        assert tg.fake.buttons_of(confirm) == []  # left: its buttons are taken away too
        before = state_of(bot)
        for data in ("d:raise.0000:confirm:publish", "v:1:1", "v:99:s3:c", "garbage", "d:raise"):
            query = forge_press(tg, OUYANG, confirm, data)
            tg.settle()
            answer = tg.answer_to(query)
            assert answer["show_alert"] and answer["text"] in (
                "This button is no longer valid.",
                "There is no issue #1.",
            ), answer
        with bot.db.transaction() as session:
            assert session.scalar(select(func.count(Issue.id))) == 0
        assert state_of(bot) == before


def forge_press(tg: Live, user: int, message_id: int, data: str) -> str:
    """A press with callback data no button of the message carries (a forged client)."""
    fake = tg.fake
    with fake.lock:
        shown = fake._store[message_id]
        query_id = str(fake._next("query"))
        fake._queries[query_id] = {"time": time.monotonic(), "answered": False}
        fake._enqueue(
            {"callback_query": {"id": query_id, "from": fake._user(user), "message": dict(shown),
                                "chat_instance": "1", "data": data}}
        )  # fmt: skip
    return query_id


def test_in_a_group_other_bots_chatter_and_commands_to_others_are_left_alone(bot_en: TestBot) -> None:
    bot = bot_en
    with live(bot) as tg:
        joined(tg, OUYANG, WANG)
        tg.fake.users[OTHER_BOT] = {"id": OTHER_BOT, "is_bot": True, "first_name": "另一个机器人"}
        tg.fake.group(GROUP, {OUYANG: "member", WANG: "member", OTHER_BOT: "member"}, bot_is_admin=True)
        tg.say(OTHER_BOT, "/issues", GROUP)
        tg.say(OUYANG, "/issues@other_bot", GROUP)
        tg.say(OUYANG, "今晚开会吗？", GROUP)
        assert tg.fake.texts_to(GROUP) == []
        tg.say(OUYANG, "/raise", GROUP)  # a group not bound: it says how to bind it
        assert "not bound to a scope yet" in tg.fake.texts_to(GROUP)[-1]
        tg.say(OUYANG, "/help", GROUP)
        assert tg.fake.texts_to(GROUP)[-1].startswith("Commands you can use:")
        with bot.db.transaction() as session:
            assert session.scalar(select(func.count()).select_from(DialogState)) == 0


# --- arbitrary updates through the real Application ------------------------------------------

USERS = (OUYANG, WANG, OTHER_BOT)
# weighted by repeats towards what people send most: private messages and group commands
CHATS = st.sampled_from(["private", "private", "private", "group", "group", "channel", "supergroup"])
CONTENT = st.one_of(
    TEXT.map(lambda t: {"text": t}),
    st.tuples(st.sampled_from([*WORDS, "/start join_X", "/start vote_1", "/linkgroup", "/x@other_bot"]), TEXT).map(
        lambda p: {"text": f"{p[0]} {p[1]}"}
    ),
    st.just({"sticker": {"file_id": "s", "file_unique_id": "s", "width": 1, "height": 1, "is_animated": False, "is_video": False, "type": "regular"}}),
    st.just({"location": {"latitude": 0.0, "longitude": 0.0}}),
    st.just({"new_chat_members": [{"id": 9, "is_bot": False, "first_name": "新"}]}),
    st.just({"migrate_to_chat_id": -1009999999999}),
    st.just({}),
)  # fmt: skip
KINDS = st.sampled_from(
    ["message", "edited_message", "channel_post", "callback_query", "my_chat_member", "inline_query"]
)
UPDATE_IDS = itertools.count(1)
DATA = st.one_of(
    st.text(max_size=64), st.sampled_from(["v:1:1", "v:1:s1:c", "d:raise.x:title:y", "v:", "d:"])
)


@pytest.fixture
def edge(bot_en: TestBot) -> Iterator[tuple[FakeTelegram, TestBot, Edge, asyncio.AbstractEventLoop]]:
    with running(FakeTelegram()) as fake:
        for user in USERS[:2]:
            fake.user(user, NAMES[user])
        fake.users[OTHER_BOT] = {"id": OTHER_BOT, "is_bot": True, "first_name": "bot"}
        fake.group(GROUP, {OUYANG: "administrator", WANG: "member"})
        fake.group(SUPERGROUP, {OUYANG: "member", WANG: "member"}, type="supergroup")
        config = replace(bot_en.app.config, telegram_token=fake.token, telegram_api_url=fake.api_url)
        loop = asyncio.new_event_loop()
        channel = TelegramChannel(config)
        edge = Edge(bot_en.app, channel)
        built = application(edge, polling=False)
        loop.run_until_complete(built.initialize())
        edge.built = built  # type: ignore[attr-defined]
        try:
            yield fake, bot_en, edge, loop
        finally:
            loop.run_until_complete(built.shutdown())
            edge.close()
            loop.close()


def update_of(fake: FakeTelegram, kind: str, user: int, chat: str, content: dict, data: str, n: int) -> dict:
    sender = {"id": user, "is_bot": user == OTHER_BOT, "first_name": "某人"}
    chat_of = {
        "private": {"id": user, "type": "private", "first_name": "某人"},
        "group": {"id": GROUP, "type": "group", "title": "群"},
        "supergroup": {"id": SUPERGROUP, "type": "supergroup", "title": "超级群"},
        "channel": {"id": -1005555555555, "type": "channel", "title": "频道"},
    }[chat]
    message = {"message_id": 10_000 + n, "date": 1_700_000_000, "chat": chat_of, "from": sender, **content}
    if kind == "callback_query":
        return {"update_id": n, kind: {"id": str(n), "from": sender, "chat_instance": "1", "data": data,
                                       "message": message}}  # fmt: skip
    if kind == "my_chat_member":
        member = {"user": fake.bot, "status": "left" if n % 2 else "member"}
        change = {"chat": chat_of, "from": sender, "date": 1_700_000_000,
                  "old_chat_member": member | {"status": "member"}, "new_chat_member": member}  # fmt: skip
        return {"update_id": n, kind: change}
    if kind == "inline_query":
        return {"update_id": n, kind: {"id": str(n), "from": sender, "query": data, "offset": ""}}
    return {"update_id": n, kind: message}


UPDATE = st.tuples(KINDS, st.sampled_from(USERS), CHATS, CONTENT, DATA)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(updates=st.lists(UPDATE, min_size=1, max_size=8))
def test_arbitrary_updates_never_break_the_edge(edge, caplog, updates) -> None:  # type: ignore[no-untyped-def]
    fake, _, handler, loop = edge
    built = handler.built
    for kind, user, chat, content, data in updates:
        n = next(UPDATE_IDS)  # each a new update: a repeated id would be ignored as a retry
        update = Update.de_json(update_of(fake, kind, user, chat, content, data, n), built.bot)
        assert update is not None
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            loop.run_until_complete(built.process_update(update))
        # an error, or a call of ours that Telegram refused; but a press of a query the fake never
        # issued (made up here) cannot be answered, as with Telegram
        unexpected = [
            r for r in caplog.records
            if r.levelno >= logging.ERROR or (r.name == "yishi.telegram" and "press could not be answered" not in r.getMessage())
        ]  # fmt: skip
        assert not unexpected, [r.getMessage() for r in unexpected]


@pytest.mark.asyncio
async def test_a_persons_updates_are_handled_in_the_order_sent_and_different_peoples_at_once() -> None:
    """The real Application with the edge's update processor: each handling sleeps a random
    while; one person's still finish in the order sent, while another's run in between."""
    done: list[tuple[int, int]] = []
    running_now: set[int] = set()
    overlapped = False
    rng = random.Random(7)

    async def handle(update: Update, _: object) -> None:
        nonlocal overlapped
        user = update.effective_user.id  # type: ignore[union-attr]
        running_now.add(user)
        overlapped = overlapped or len(running_now) > 1
        await asyncio.sleep(rng.random() / 100)
        running_now.discard(user)
        done.append((user, update.update_id))

    with running(FakeTelegram()) as fake:
        built = (
            Application.builder()
            .token(fake.token)
            .base_url(fake.api_url)
            .concurrent_updates(ByPerson())
            .updater(None)
            .build()
        )
        built.add_handler(TypeHandler(Update, handle))
        async with built:
            await built.start()
            for n in range(60):
                user = (OUYANG, WANG, 5004)[n % 3]
                message = {"message_id": n, "date": 0, "chat": {"id": user, "type": "private"},
                           "from": {"id": user, "is_bot": False, "first_name": "x"}, "text": str(n)}  # fmt: skip
                await built.update_queue.put(Update.de_json({"update_id": n, "message": message}, built.bot))
            while len(done) < 60:
                await asyncio.sleep(0.01)
            await built.stop()
    for user in (OUYANG, WANG, 5004):
        mine = [n for who, n in done if who == user]
        assert mine == sorted(mine) and len(mine) == 20
    assert overlapped and done != sorted(done, key=lambda d: d[1])  # others' ran at once, not in one line


def test_a_sticker_or_an_edit_in_a_dialog_leaves_its_step_and_buttons_as_they_were(bot_en: TestBot) -> None:
    bot = bot_en
    with live(bot) as tg:
        joined(tg, OUYANG)
        tg.say(OUYANG, "/raise")
        tg.say(OUYANG, "1栋电梯经常停运")
        typed = tg.fake.say(OUYANG, "停了三次。")
        tg.settle()
        scopes = tg.last(OUYANG)
        tg.fake.inject({"message": tg.fake.incoming(OUYANG, location={"latitude": 31.2, "longitude": 121.5})})
        tg.fake.inject({"edited_message": typed | {"text": "停了四次。", "edit_date": typed["date"] + 5}})
        tg.settle()
        assert tg.fake.buttons_of(scopes["message_id"])  # the scope step can still be answered by button
        press_first = tg.fake.buttons_of(scopes["message_id"])[0][0]["callback_data"]
        tg.press(OUYANG, scopes["message_id"], press_first)
        assert "Publish" in str(tg.last(OUYANG)["reply_markup"])


def test_a_photo_telegram_cannot_give_is_refused_to_the_webhook_so_that_it_is_sent_again(
    bot_en: TestBot,
) -> None:
    bot = bot_en
    with running(FakeTelegram()) as fake, served(bot, fake) as url:
        fake.user(OUYANG, NAMES[OUYANG])
        message = fake.send_photo_from(OUYANG, jpeg(640, 480))
        update = json.dumps({"update_id": 42, "message": message}).encode()
        fake.unavailable = 1  # getFile meets a 502
        assert request(f"{url}/telegram", update, SECRET)[0] == 503
        assert fake.sent == []
        assert request(f"{url}/telegram", update, SECRET)[0] == 200  # Telegram's retry is read
        assert fake.texts_to(OUYANG)[-1].startswith("I keep a photo only while an issue is raised")
