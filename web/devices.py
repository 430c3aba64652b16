"""Device cookies: a browser that signed in to an account before carries a signed mark of it,
so a stranger's failed guesses at that account do not lock its owner's browser out.

The mark is `device_id.mac`, the MAC binding the device id to the account's name, keyed from
the session cookie key (on PostgreSQL the one every process shares). It holds no secret of
the user's; forging one needs the server's key. One mark per browser: signing in to another
account replaces it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from ledger.usernames import username_key

DEVICE_COOKIE = "mlc_device"
DEVICE_MAX_AGE_S = 365 * 24 * 3600


class DeviceCookies:
    """Issues and checks device marks. The key comes at start-up (`use_key`)."""

    def __init__(self, session_key: bytes | None = None) -> None:
        self._key: bytes | None = None
        if session_key is not None:
            self.use_key(session_key)

    def use_key(self, session_key: bytes) -> None:
        # A key of its own, derived: a device mark can never be replayed as anything else.
        self._key = hmac.new(session_key, b"ml-cabinet device cookies", hashlib.sha256).digest()

    def _mac(self, username: str, device_id: str) -> str:
        assert self._key is not None, "the device key is set when the app starts"
        message = f"{username_key(username)[:64]}\x00{device_id}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]

    def issue(self, username: str) -> str:
        device_id = secrets.token_hex(8)
        return f"{device_id}.{self._mac(username, device_id)}"

    def known(self, username: str, mark: str | None) -> str | None:
        """The device id when `mark` is a valid mark of this account, else None."""
        if self._key is None or not mark or len(mark) != 49:
            return None
        device_id, _, mac = mark.partition(".")
        if len(device_id) != 16 or not hmac.compare_digest(mac, self._mac(username, device_id)):
            return None
        return device_id
