"""Sealed tallies: a secret poll's running counts, encrypted with the ballot key until its close.

A reader of the database (SELECT, or a dump, or two dumps taken around one ballot) sees one
sealed value per poll that every ballot rewrites: the same length, new random bytes, nothing
that says which option gained. The key is `YISHI_BALLOT_KEY` (32 bytes, URL-safe base64); where
it is not set, a key is made at first need in a file outside the database, readable by its owner
only (`YISHI_BALLOT_KEY_FILE`, default `yishi-ballot.key`), and the log says so once.

AES-GCM (the `cryptography` package) with the poll's id as associated data: a sealed value
copied onto another poll does not open. A key that does not open a poll's value is an error
(`SealBroken`), never a count of zero.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
import struct
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger("yishi.seal")

KEY_BYTES = 32
NONCE_BYTES = 12
VERSION = "1"


class BadKey(ValueError):
    """A key (or key file) that is not 32 bytes in URL-safe base64; the message says where."""


class SealBroken(Exception):
    """The ballot key does not open a poll's sealed tally (another key, or a damaged value)."""

    def __init__(self, poll_id: int, sealed_with: str, key_id: str) -> None:
        super().__init__(f"poll {poll_id}: sealed with key {sealed_with}, this key is {key_id}")
        self.poll_id, self.sealed_with, self.key_id = poll_id, sealed_with, key_id


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise BadKey(f"{where} is not a ballot key: 32 bytes in URL-safe base64 (44 characters)")
    return key


class BallotKey:
    """The key, from the environment or its file, read (or made) when first needed."""

    def __init__(self, key: str = "", path: str | Path = "yishi-ballot.key") -> None:
        self._given, self.path = key, Path(path)
        self._aead: AESGCM | None = None
        self._id = ""
        self._lock = threading.Lock()

    def _load(self) -> AESGCM:
        with self._lock:
            if self._aead is None:
                key = decode_key(self._given, "YISHI_BALLOT_KEY") if self._given else self._from_file()
                self._id = hashlib.sha256(b"yishi ballot key " + key).hexdigest()[:8]
                self._aead = AESGCM(key)
            return self._aead

    def _from_file(self) -> bytes:
        """The key file's key; made if absent, whole or not at all: the key is written to a file of
        its own, then linked into place, so that a process starting at the same moment reads either
        no file (and links its own, which fails: it reads ours) or the whole key, never half."""
        try:
            return decode_key(self.path.read_text(encoding="ascii", errors="replace"), str(self.path))
        except FileNotFoundError:
            pass
        text = new_key()
        draft = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(text + "\n")
                f.flush()
                os.fsync(f.fileno())  # on disk before it is in place: a crash leaves no empty key
            os.link(draft, self.path)
        except FileExistsError:  # another process made it first: its key is the key
            return decode_key(self.path.read_text(encoding="ascii", errors="replace"), str(self.path))
        finally:
            draft.unlink(missing_ok=True)
        log.warning(
            "made a new ballot key in %s (readable by its owner only): give every process the same "
            "key in YISHI_BALLOT_KEY, and keep it apart from the database's backups",
            self.path.resolve(),
        )
        return decode_key(text, str(self.path))

    @property
    def key_id(self) -> str:
        """A short fingerprint of the key (it says nothing of the key), named in errors."""
        self._load()
        return self._id

    def seal(self, poll_id: int, counts: list[int]) -> str:
        """The counts of options 1…n as one value of a fixed length for n options."""
        aead = self._load()
        nonce = secrets.token_bytes(NONCE_BYTES)
        body = aead.encrypt(nonce, struct.pack(f">{len(counts)}I", *counts), _aad(poll_id))
        return f"{VERSION}:{self._id}:" + base64.urlsafe_b64encode(nonce + body).decode()

    def unseal(self, poll_id: int, sealed: str, options: int) -> list[int]:
        aead = self._load()
        version, _, rest = sealed.partition(":")
        sealed_with, _, data = rest.partition(":")
        try:
            raw = base64.urlsafe_b64decode(data.encode())
            plain = aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(poll_id))
            if version != VERSION or len(plain) != 4 * options:
                raise InvalidTag
        except (InvalidTag, binascii.Error, ValueError):
            raise SealBroken(poll_id, sealed_with or "?", self._id) from None
        return list(struct.unpack(f">{options}I", plain))

    def seal_text(self, purpose: str, text: str, width: int = 64) -> str:
        """A short text kept unreadable in the database (a ballot spoken, waiting to be confirmed),
        padded to `width` bytes so that its length says nothing either."""
        raw = text.encode()
        if len(raw) > width:
            raise ValueError("too long to seal")
        aead = self._load()
        nonce = secrets.token_bytes(NONCE_BYTES)
        body = aead.encrypt(nonce, raw.ljust(width, b"\0"), purpose.encode())
        return f"{VERSION}:{self._id}:" + base64.urlsafe_b64encode(nonce + body).decode()

    def unseal_text(self, purpose: str, sealed: str) -> str | None:
        """The text, or None where this key does not open it (the key changed since)."""
        aead = self._load()
        data = sealed.split(":", 2)[-1]
        try:
            raw = base64.urlsafe_b64decode(data.encode())
            return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], purpose.encode()).rstrip(b"\0").decode()
        except (InvalidTag, binascii.Error, ValueError):
            return None


def _aad(poll_id: int) -> bytes:
    return f"yishi poll {poll_id}".encode()
