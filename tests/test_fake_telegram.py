"""The fake Bot API through python-telegram-bot's own `Bot`: what it answers is what PTB parses."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

os.environ.setdefault("PTB_TIMEDELTA", "true")  # as bot/channels/telegram.py: retry_after as a timedelta

import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
)
from telegram.error import BadRequest, ChatMigrated, Conflict, Forbidden, RetryAfter

from tests.fake_telegram import FakeTelegram, jpeg, running

ALICE, BOB, GROUP, SUPERGROUP = 1001, 1002, -4001, -1009876543210


def bot_for(fake: FakeTelegram) -> Bot:
    return Bot(fake.token, base_url=fake.api_url, base_file_url=fake.file_url)


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(d.upper(), callback_data=d)] for d in data])


@pytest.mark.asyncio
async def test_messages_are_sent_edited_and_deleted_as_telegram_allows() -> None:
    with running(FakeTelegram()) as fake:
        fake.user(ALICE, "阿丽")
        async with bot_for(fake) as bot:
            sent = await bot.send_message(ALICE, "投票：", reply_markup=keyboard("yes", "no"))
            assert sent.chat.first_name == "阿丽" and sent.from_user and sent.from_user.is_bot
            assert fake.buttons_of(sent.message_id) == [
                [{"text": "YES", "callback_data": "yes"}],
                [{"text": "NO", "callback_data": "no"}],
            ]
            with pytest.raises(BadRequest, match="Button_data_invalid"):
                await bot.send_message(ALICE, "x", reply_markup=keyboard("议" * 22))  # 66 bytes
            with pytest.raises(BadRequest, match="Message is too long"):
                await bot.send_message(ALICE, "😀" * 2049)  # 4,098 UTF-16 units
            with pytest.raises(BadRequest, match="Chat not found"):
                await bot.send_message(BOB, "你好")

            with pytest.raises(BadRequest, match="not modified"):
                await bot.edit_message_text(
                    "投票：", ALICE, sent.message_id, reply_markup=keyboard("yes", "no")
                )
            edited = await bot.edit_message_text("已结束", ALICE, sent.message_id)  # no markup: no buttons
            assert not isinstance(edited, bool) and edited.text == "已结束"
            assert fake.buttons_of(sent.message_id) == []
            await bot.edit_message_reply_markup(ALICE, sent.message_id, reply_markup=keyboard("again"))
            assert fake.last_to(ALICE) is not None and fake.last_to(ALICE)["text"] == "已结束"

            assert await bot.delete_message(ALICE, sent.message_id)
            with pytest.raises(BadRequest, match="Message to delete not found"):
                await bot.delete_message(ALICE, sent.message_id)
    assert [m["kind"] for m in fake.messages] == ["text", "edit", "markup", "delete"]
    assert fake.texts_to(ALICE) == ["投票："]


@pytest.mark.asyncio
async def test_long_polling_waits_for_an_update_and_confirms_it_with_the_offset() -> None:
    with running(FakeTelegram()) as fake:
        fake.user(ALICE, "阿丽", username="ali")
        async with bot_for(fake) as bot:
            assert await bot.get_updates(timeout=0) == ()
            poll = asyncio.create_task(bot.get_updates(timeout=5, allowed_updates=["message"]))
            await asyncio.sleep(0.2)
            fake.say(ALICE, "/start abc")
            (update,) = await asyncio.wait_for(poll, 2)
            assert update.message and update.message.text == "/start abc"
            assert update.message.parse_entities() == {update.message.entities[0]: "/start"}
            assert fake.allowed_updates == ["message"]

            message = await bot.send_message(ALICE, "选一个", reply_markup=keyboard("a"))
            fake.press(ALICE, message, "a")  # not asked for: dropped as it arrives
            assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == ()

            first = asyncio.create_task(bot.get_updates(timeout=1))
            await asyncio.sleep(0.2)
            async with bot_for(fake) as another:  # a second instance of the bot: the later poll wins
                answers = await asyncio.gather(first, another.get_updates(timeout=1), return_exceptions=True)
            assert sorted(map(str, answers)) == [
                "()",
                "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
            ]


@pytest.mark.asyncio
async def test_a_button_press_is_answered_once_and_in_time() -> None:
    with running(FakeTelegram()) as fake:
        fake.user(ALICE, "阿丽")
        async with bot_for(fake) as bot:
            message = await bot.send_message(ALICE, "选一个", reply_markup=keyboard("a", "b"))
            query_id = fake.press(ALICE, fake.last_to(ALICE) or {}, "b")
            (update,) = await bot.get_updates()
            assert update.callback_query and update.callback_query.data == "b"
            assert (
                update.callback_query.message
                and update.callback_query.message.message_id == message.message_id
            )
            assert await bot.answer_callback_query(query_id, "已记下", show_alert=True)
            with pytest.raises(BadRequest, match="Query is too old"):
                await bot.answer_callback_query(query_id)
            fake.callback_timeout = 0.05
            late = fake.press(ALICE, message.message_id, "a")
            await asyncio.sleep(0.1)
            with pytest.raises(BadRequest, match="Query is too old"):
                await bot.answer_callback_query(late)
    assert [(a["text"], a["show_alert"]) for a in fake.answers] == [("已记下", True)]


@pytest.mark.asyncio
async def test_photos_arrive_in_sizes_are_downloaded_and_sent() -> None:
    picture = jpeg(1600, 1200)
    with running(FakeTelegram()) as fake:
        fake.user(ALICE, "阿丽")
        fake.send_photo_from(ALICE, picture, caption="路灯坏了")
        async with bot_for(fake) as bot:
            (update,) = await bot.get_updates()
            assert update.message and update.message.caption == "路灯坏了"
            assert [(p.width, p.height) for p in update.message.photo] == [(90, 68), (320, 240), (1280, 960)]
            file = await update.message.photo[-1].get_file()
            assert bytes(await file.download_as_bytearray()) == picture

            uploaded = await bot.send_photo(ALICE, jpeg(640, 480), caption="已转交")
            assert max(p.width for p in uploaded.photo) == 640
            again = await bot.send_photo(ALICE, uploaded.photo[0].file_id)
            assert again.photo == uploaded.photo
            with pytest.raises(BadRequest, match="Image_process_failed"):
                await bot.send_photo(ALICE, b"not a picture")
            with pytest.raises(BadRequest, match="Wrong file identifier"):
                await bot.send_photo(ALICE, "AgACunknown")
    assert [(m["kind"], m["text"]) for m in fake.messages] == [("photo", "已转交"), ("photo", None)]


@pytest.mark.asyncio
async def test_groups_have_members_a_pace_a_privacy_mode_and_an_upgrade() -> None:
    with running(FakeTelegram()) as fake:
        fake.user(ALICE, "阿丽")
        fake.user(BOB, "阿博", started=False)
        fake.group(GROUP, members={ALICE: "creator", BOB: "member"}, title="三号楼")
        async with bot_for(fake) as bot:
            assert (await bot.get_chat_member(GROUP, ALICE)).status == "creator"
            assert (await bot.get_chat_member(GROUP, fake.bot["id"])).status == "member"
            assert (await bot.get_chat(GROUP)).title == "三号楼"
            with pytest.raises(Forbidden, match="bot can't initiate conversation with a user"):
                await bot.send_message(BOB, "你好")

            fake.say(BOB, "大家好", chat_id=GROUP)  # privacy mode: not for the bot
            fake.say(BOB, "/help@yishi_test_bot", chat_id=GROUP)
            (update,) = await bot.get_updates()
            assert (
                update.message
                and update.message.chat.type == "group"
                and update.message.text.startswith("/help")
            )

            for n in range(20):
                await bot.send_message(GROUP, f"第{n}条")
            with pytest.raises(RetryAfter) as refused:
                await bot.send_message(GROUP, "第21条")
            assert timedelta(seconds=50) <= refused.value.retry_after <= timedelta(seconds=60)

            fake.migrate(GROUP, SUPERGROUP)
            with pytest.raises(ChatMigrated) as moved:
                await bot.send_message(GROUP, "还在吗")
            assert moved.value.new_chat_id == SUPERGROUP
            updates = await bot.get_updates(offset=update.update_id + 1)
            assert [u.message.migrate_to_chat_id for u in updates if u.message] == [SUPERGROUP, None]

            fake.remove_bot(SUPERGROUP, by=ALICE)
            with pytest.raises(Forbidden, match="bot was kicked from the supergroup chat"):
                await bot.send_message(SUPERGROUP, "还在吗")


@pytest.mark.asyncio
async def test_the_overall_rate_and_flood_control_refuse_with_a_retry_after() -> None:
    with running(FakeTelegram(overall_per_second=2, flood=1)) as fake:
        fake.user(ALICE, "阿丽")
        async with bot_for(fake) as bot:
            with pytest.raises(RetryAfter):
                await bot.send_message(ALICE, "一")  # flood control
            await bot.send_message(ALICE, "一")
            await bot.send_message(ALICE, "二")
            with pytest.raises(RetryAfter) as refused:
                await bot.send_message(ALICE, "三")
    assert refused.value.retry_after == timedelta(seconds=1) and fake.texts_to(ALICE) == ["一", "二"]


@pytest.mark.asyncio
async def test_commands_are_kept_per_scope_and_language() -> None:
    with running(FakeTelegram()) as fake:
        async with bot_for(fake) as bot:
            commands = [BotCommand("help", "帮助"), BotCommand("/raise", " 提出议题 ")]
            scope = BotCommandScopeAllPrivateChats()
            assert await bot.set_my_commands(commands, scope=scope, language_code="zh")
            assert [c.command for c in await bot.get_my_commands(scope=scope, language_code="zh")] == [
                "help",
                "raise",
            ]
            assert await bot.get_my_commands() == ()
            with pytest.raises(BadRequest, match="Invalid language code specified"):
                await bot.set_my_commands(commands, language_code="zh-hans")
            with pytest.raises(BadRequest, match="Bot_command_invalid"):
                await bot.set_my_commands([BotCommand("Help", "帮助")])
    assert fake.commands == {
        ("all_private_chats", "zh"): [
            {"command": "help", "description": "帮助"},
            {"command": "raise", "description": "提出议题"},
        ]
    }


class Receiver:
    """A webhook: it answers each POST with the next of `statuses` (then 200), 403 to a wrong secret."""

    def __init__(self, secret: str, statuses: list[int]) -> None:
        self.secret, self.statuses, self.received = secret, statuses, []

    @contextmanager
    def serving(self) -> Iterator[str]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                right = self.headers.get("X-Telegram-Bot-Api-Secret-Token") == receiver.secret
                status = (receiver.statuses.pop(0) if receiver.statuses else 200) if right else 403
                receiver.received.append((body["update_id"], status))
                self.send_response(status)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/hook"
        finally:
            server.shutdown()
            server.server_close()
            thread.join()


@pytest.mark.asyncio
async def test_a_webhook_gets_updates_with_the_secret_and_again_after_a_refusal() -> None:
    receiver = Receiver("s3cret", [500])
    with running(FakeTelegram(webhook_retry_delay=0.01)) as fake, receiver.serving() as url:
        fake.user(ALICE, "阿丽")
        async with bot_for(fake) as bot:
            with pytest.raises(BadRequest, match="Secret token contains unallowed characters"):
                await bot.set_webhook(url, secret_token="no spaces")
            assert await bot.set_webhook(url, secret_token="s3cret", allowed_updates=["message"])
            with pytest.raises(Conflict, match="can't use getUpdates method while webhook is active"):
                await bot.get_updates()
            fake.say(ALICE, "你好")
            assert fake.deliveries == []  # kept until deliveries are on
            assert (await bot.get_webhook_info()).pending_update_count == 1
            fake.deliver_webhooks = True
            for _ in range(100):
                if len(fake.deliveries) == 2:
                    break
                await asyncio.sleep(0.02)
            update_id = receiver.received[0][0]
            assert receiver.received == [(update_id, 500), (update_id, 200)] == fake.deliveries
            info = await bot.get_webhook_info()
            assert info.url == url and info.pending_update_count == 0 and info.allowed_updates == ("message",)
            assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
            assert fake.post_update({"update_id": update_id, "message": {}}, secret="wrong") == 403
            assert await bot.delete_webhook()
    assert fake.webhook is None
