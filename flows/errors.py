"""A refusal: the rule said no. It carries a message id and its parameters, never translated text,
so the handler can answer in the reader's language; nothing of the transaction is kept."""

from __future__ import annotations


class Refused(Exception):
    def __init__(self, msgid: str, **params: object) -> None:
        super().__init__(msgid)
        self.msgid = msgid
        self.params = params
