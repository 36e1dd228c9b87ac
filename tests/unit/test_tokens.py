from __future__ import annotations

import hashlib

from userprov.tokens import hash_token, new_token, token_matches


class TestTokens:
    """Tokens are 32 random bytes, URL-safe, stored as SHA-256 and compared in constant time."""

    def test_random_and_url_safe(self) -> None:
        tokens = {new_token() for _ in range(1000)}
        assert len(tokens) == 1000
        assert all(len(t) == 43 and set(t) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") for t in tokens)

    def test_hash_is_sha256(self) -> None:
        assert hash_token("abc") == hashlib.sha256(b"abc").digest()

    def test_matches(self) -> None:
        token = new_token()
        assert token_matches(token, hash_token(token))
        assert not token_matches(token + "x", hash_token(token))
