"""Opaque public ids for tasks and transactions: `tsk_...` and `txn_...`.

Tasks and transactions are numbered globally (a transaction's id is its event's position), so
showing the numbers would tell a new user how busy everybody else is. The web edge shows
instead a keyed permutation of the number: a 4-round Feistel network over 64 bits whose round
function is HMAC-SHA256, written as 13 base32 characters. It is reversible with the key and
says nothing without it; the stored data and the domain keep the numbers.

The key is derived from the session cookie key (a file beside the SQLite database, or the
secret every PostgreSQL process shares), so every process and every restart agree.
"""

from __future__ import annotations

import hashlib
import hmac

TASK, TRANSACTION = "tsk_", "txn_"
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32, lower case
LENGTH = 13  # 13 × 5 = 65 bits ≥ 64
ROUNDS = 4
SHA256_BLOCK = 64  # bytes; a round key (32) is padded to it
MAX_ID = 2**53  # ids a JSON client reads exactly; a decoded value past it is garbage
_MASK32 = 0xFFFFFFFF
_VALUE = {char: index for index, char in enumerate(ALPHABET)}
_SHIFTS = tuple(range(5 * (LENGTH - 1), -1, -5))  # the first character holds the top bits


class PublicIdCodec:
    """Encodes a positive integer id as prefix + 13 characters and back, under one key."""

    def __init__(self, key: bytes) -> None:
        round_keys = [hmac.new(key, f"ml-cabinet public ids round {n}".encode(),
                               hashlib.sha256).digest() for n in range(ROUNDS)]
        # HMAC-SHA256 as RFC 2104 writes it, from the two padded-key states hashed once here:
        # the same bytes as hmac.new(round_key, half, sha256).digest() at a third of the cost,
        # and without hmac.digest, whose one-shot C call lets go of the GIL on every call
        # (an id is encoded on every reply that shows a task, four rounds each).
        self._pads = [(hashlib.sha256(bytes(b ^ 0x36 for b in k.ljust(SHA256_BLOCK, b"\0"))),
                       hashlib.sha256(bytes(b ^ 0x5C for b in k.ljust(SHA256_BLOCK, b"\0"))))
                      for k in round_keys]

    def _f(self, round_no: int, half: int) -> int:
        inner_pad, outer_pad = self._pads[round_no]
        inner, outer = inner_pad.copy(), outer_pad.copy()
        inner.update(half.to_bytes(4, "big"))
        outer.update(inner.digest())
        return int.from_bytes(outer.digest()[:4], "big")

    def _permute(self, value: int) -> int:
        left, right = value >> 32, value & _MASK32
        for n in range(ROUNDS):
            left, right = right, left ^ self._f(n, right)
        return (left << 32) | right

    def _unpermute(self, value: int) -> int:
        left, right = value >> 32, value & _MASK32
        for n in reversed(range(ROUNDS)):
            left, right = right ^ self._f(n, left), left
        return (left << 32) | right

    def encode(self, prefix: str, number: int) -> str:
        if not 0 < number < MAX_ID:
            raise ValueError(f"an id is 1 to 2**53 - 1, not {number}")
        value = self._permute(number)
        return prefix + "".join([ALPHABET[value >> shift & 31] for shift in _SHIFTS])

    def decode(self, prefix: str, text: str) -> int | None:
        """The number behind an id of this kind, or None for anything else."""
        body = text[len(prefix):] if text.startswith(prefix) else None
        if body is None or len(body) != LENGTH:
            return None
        value = 0
        for char in body:
            digit = _VALUE.get(char)
            if digit is None:
                return None
            value = value << 5 | digit
        if value >> 64:
            return None
        number = self._unpermute(value)
        return number if 0 < number < MAX_ID else None


class PublicIds:
    """The app's codec; its key comes at start-up (`use_key`), as the cookie key does."""

    def __init__(self, session_key: bytes | None = None) -> None:
        self._codec: PublicIdCodec | None = None
        if session_key is not None:
            self.use_key(session_key)

    def use_key(self, session_key: bytes) -> None:
        # A key of its own, derived: knowing an id's mapping gives nothing about cookies.
        self._codec = PublicIdCodec(hmac.new(session_key, b"ml-cabinet public ids",
                                             hashlib.sha256).digest())

    @property
    def codec(self) -> PublicIdCodec:
        assert self._codec is not None, "the public id key is set when the app starts"
        return self._codec

    def task(self, number: int) -> str:
        return self.codec.encode(TASK, number)

    def transaction(self, number: int) -> str:
        return self.codec.encode(TRANSACTION, number)

    def parse(self, prefix: str, text: str) -> int | None:
        """An opaque id of this kind, or the old plain number (links made before ids were
        opaque keep working); None for anything else."""
        text = text.strip()
        if text.isascii() and text.isdigit() and 0 < len(text) <= 18:
            return int(text) or None
        return self.codec.decode(prefix, text)
