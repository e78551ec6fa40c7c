"""The edges: each channel turns its platform's updates into `Incoming` and sends `Reply`.

`telegram` and `wechatpy` are imported only in this package.
"""
