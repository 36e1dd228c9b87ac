"""The edge's decision table: what is refused before any handler runs, and why."""
from __future__ import annotations

import json

import pytest

from contracts import routing
from contracts.queries import AccountsGet
from userprov.runtime.dispatch import Route, read_message
from userprov.runtime.envelope import Envelope
from userprov.runtime.errors import Rejected


async def _handler(message: object, uow: object) -> None:
    return None


ROUTES = {routing.ACCOUNTS_GET: Route(AccountsGet, _handler)}


def envelope(body: bytes = b'{"account_id": "a"}', *, key: str = routing.ACCOUNTS_GET, message_id: str | None = "id-1",
             correlation_id: str | None = None, reply_to: str | None = None) -> Envelope:
    return Envelope(key, body, message_id, correlation_id, reply_to, 0)


@pytest.mark.parametrize(("given", "reason"), [
    (envelope(key="no.such.key"), "unknown_type"),
    (envelope(message_id="nul\x00"), "invalid_properties"),
    (envelope(message_id="undecodable\udcff"), "invalid_properties"),
    (envelope(correlation_id="\x07"), "invalid_properties"),
    (envelope(reply_to="x" * 256), "invalid_properties"),
    (envelope(message_id=None), "missing_message_id"),
    (envelope(b"{not json"), "malformed_json"),
    (envelope(b"\xff\xfe"), "malformed_json"),
    (envelope(b"[" * 100_000 + b"]" * 100_000), "malformed_json"),
    (envelope(b'{"account_id": ' + b"1" * 5000 + b"}"), "malformed_json"),
    (envelope(b'{"account_id": "a", "extra": 1}'), "schema_invalid"),
    (envelope(json.dumps({"account_id": "a\ud800"}).encode()), "schema_invalid"),
])
def test_refused_before_any_handler(given: Envelope, reason: str) -> None:
    read = read_message(given, ROUTES)
    assert isinstance(read, Rejected) and read.reason == reason


def test_a_good_message_is_read() -> None:
    read = read_message(envelope(), ROUTES)
    assert not isinstance(read, Rejected)
    route, message = read
    assert route.handler is _handler and message == AccountsGet(account_id="a")


@pytest.mark.parametrize(("error", "settle"), [
    (ConnectionResetError(), "later"),
    (TimeoutError(), "later"),
    (RuntimeError("a bug"), "retry"),
    (KeyError("x"), "retry"),
])
def test_settle_after_a_handler_failed(error: Exception, settle: str) -> None:
    from userprov.runtime.dispatch import settle_after_failure

    assert settle_after_failure(error)[0].value == settle
