"""WeChat: the community's Official Account (服务号), where residents talk to Yishi one to one.

`callback` takes WeChat's callbacks (a route of `yishi serve`): each message is answered
passively within WeChat's five seconds where it can be, else through the customer-service API.
`sender` sends what the bot says on its own through that API, within each resident's window.
`client` is wechatpy's client with every call to `WECHAT_API_URL` and its access token shared by
all processes through the database. WeCom group robots are `bot.channels.wecom`.
"""

from bot.channels.wechat.sender import CHANNEL, WeChatChannel

__all__ = ["CHANNEL", "WeChatChannel"]
