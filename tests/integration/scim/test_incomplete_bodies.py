"""Bodies that are too large or never finish, sent over raw sockets to the session's SCIM
service (request deadline 2 s, bodies of at most 64 KiB): a declared Content-Length beyond the
limit is a 413 at once, before any of the body is read; a body that stops short is a 408 at the
deadline, then the connection closes, and nothing of the request is done."""
from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

from tests.integration.conftest import address
from tests.integration.scim.conftest import Tenant

DEADLINE_SECONDS = 2  # USERPROV_SCIM_REQUEST_SECONDS of the session's SCIM service


async def _exchange(base: str, token: str, declared: int, body: bytes) -> tuple[bytes, float]:
    """What the server sent until it closed the connection, and how long that took."""
    url = urlsplit(base)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    started = time.monotonic()
    writer.write(f"POST {url.path}/Users HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {token}\r\n"
                 f"Content-Type: application/scim+json\r\nContent-Length: {declared}\r\n\r\n".encode() + body)
    await writer.drain()
    try:
        answer = await asyncio.wait_for(reader.read(), timeout=DEADLINE_SECONDS + 8)
    finally:
        writer.close()
    return answer, time.monotonic() - started


class TestDeclaredTooLarge:
    async def test_is_a_413_at_once(self, tenant: Tenant, scim_base: str) -> None:
        t: Tenant = await tenant()
        for declared in (100_000_000, 70_000):
            answer, seconds = await _exchange(scim_base, t.token, declared, b'{"a": 1')
            assert answer.startswith(b"HTTP/1.1 413 "), (declared, answer[:200])
            assert b'"status": "413"' in answer or b'"status":"413"' in answer, answer
            assert seconds < DEADLINE_SECONDS, f"answered after {seconds:.1f} s, not at once"


class TestBodyStopsShort:
    async def test_is_a_408_at_the_deadline_and_nothing_is_done(self, tenant: Tenant, scim_base: str) -> None:
        t: Tenant = await tenant()
        email = address("cut.short")
        whole = (b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "' + email.encode()
                 + b'", "name": {"givenName": "Ada", "familyName": "Lovelace"}}')
        for sent in (b'{"a": 1', whole):  # a complete JSON body, its Content-Length longer: still not a request
            answer, seconds = await _exchange(scim_base, t.token, len(whole) + 1000, sent)
            assert answer.startswith(b"HTTP/1.1 408 "), (sent[:10], answer[:200])
            assert DEADLINE_SECONDS - 0.5 < seconds < DEADLINE_SECONDS + 5, seconds
        assert (await t.find(f'userName eq "{email}"'))["totalResults"] == 0, "a request that never arrived was done"
