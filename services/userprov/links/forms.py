"""What the page's form carries besides the choice: a key that only this service can make, for
this token, recently (anti-forgery), and what a token from a link may look like at all."""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
import time

TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,256}")  # what userprov issues (URL-safe base64); anything else is unknown
FORM_KEY_SECONDS = 24 * 3600  # a page left open for a day may still be submitted


def plausible_token(token: str | None) -> bool:
    return token is not None and TOKEN_SHAPE.fullmatch(token) is not None


class FormKeys:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, issued: int, token: str) -> bytes:
        message = struct.pack(">Q", issued) + hashlib.sha256(token.encode()).digest()
        return hmac.new(self._secret, b"userprov-links-form|" + message, hashlib.sha256).digest()[:18]

    def issue(self, token: str, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        return base64.urlsafe_b64encode(struct.pack(">Q", issued) + self._mac(issued, token)).decode()

    def valid(self, key: str | None, token: str, now: float | None = None) -> bool:
        if not key or len(key) > 64:
            return False
        try:
            raw = base64.urlsafe_b64decode(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            return False
        if len(raw) != 26:
            return False
        issued = struct.unpack(">Q", raw[:8])[0]
        age = (now if now is not None else time.time()) - issued
        return 0 <= age <= FORM_KEY_SECONDS and hmac.compare_digest(raw[8:], self._mac(issued, token))
