"""Telegram through python-telegram-bot 22: the one Telegram library of Yishi, imported here only.

`sender`: the outbox's messages (to private chats and bound groups), paced per chat.
`updates`: a platform update as the core's `Incoming`, and the core's replies as API calls.
`runner`: the `Application` that receives updates (long polling, or webhooks through `yishi
serve`), each person's in the order sent, different people's at once.
"""

from bot.channels.telegram.sender import TelegramChannel

__all__ = ["TelegramChannel"]
