"""Hostile messages for every routing key userprov consumes: generated bodies (random bytes,
deep and huge JSON, wrong types, strings full of control, format, surrogate, RTL and NUL
characters, 2 MB strings) and generated AMQP properties."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from contracts import routing
from userprov.runtime.dispatch import read_message, route_table
from userprov.runtime.envelope import Envelope
from userprov.runtime.errors import Rejected

ACCOUNT = "fuzz-account"

VALID_BODIES: dict[str, dict[str, Any]] = {
    routing.ACCOUNTS_UPSERT: {"account_id": ACCOUNT, "name": "Fuzz", "licences": {"gotomeeting": 1000}},
    routing.USERS_ADD: {
        "account_id": ACCOUNT,
        "users": [{"first_name": "Fuzz", "last_name": "Row", "email": "fuzz.row@example.com"}],
        "pasted": "Fuzz Paste fuzz.paste@example.com",
    },
    routing.USERS_REMOVE: {"account_id": ACCOUNT, "email": "fuzz.gone@example.com"},
    routing.USERS_DEACTIVATE: {"account_id": ACCOUNT, "email": "fuzz.row@example.com"},
    routing.USERS_REACTIVATE: {"account_id": ACCOUNT, "email": "fuzz.row@example.com"},
    routing.USERS_UPDATE: {"account_id": ACCOUNT, "email": "fuzz.row@example.com", "first_name": "Fuzzed", "external_id": "idp-1"},
    routing.USERS_LIST: {"account_id": ACCOUNT, "email": "fuzz.row@example.com", "external_id": "idp-1", "active": True,
                         "start_index": 1, "count": 10},
    routing.SCIM_TOKENS_ADD: {"account_id": ACCOUNT, "token_id": str(uuid.UUID(int=3)), "token_hash": "ab" * 32},
    routing.SCIM_TOKENS_REVOKE: {"token_id": str(uuid.UUID(int=3))},
    routing.SCIM_TOKENS_RESOLVE: {"token_hash": "ab" * 32},
    routing.INVITATIONS_RETRY_FAILED: {"account_id": ACCOUNT},
    routing.INVITATIONS_FAILED: {"account_id": ACCOUNT, "limit": 10},
    routing.INVITATIONS_PEEK: {"token": "fuzz-token"},
    routing.INVITATIONS_RESEND: {"account_id": ACCOUNT, "email": "fuzz.row@example.com"},
    routing.USERS_GET: {"account_id": ACCOUNT, "email": "fuzz.row@example.com"},
    routing.ACCOUNTS_GET: {"account_id": ACCOUNT},
    routing.COMMANDS_GET: {"command_id": "fuzz-command"},
    routing.AUDIT_LIST: {"account_id": ACCOUNT, "email": "fuzz.row@example.com", "actions": ["user.added"],
                         "since": "2026-01-01T00:00:00Z", "until": "2027-01-01T00:00:00Z", "limit": 10},
    routing.INVITATION_ACCEPTED: {"token": "fuzz-token"},
    routing.INVITATION_DECLINED: {"token": "fuzz-token"},
    routing.ASSET_RECORDED: {"account_id": ACCOUNT, "email": "fuzz.row@example.com", "kind": "session_history", "ref": "r"},
    routing.MEMBERSHIPS_CREATED: {"account_id": ACCOUNT, "membership_ids": [str(uuid.UUID(int=1))]},
    routing.INVITATION_ISSUED: {"invitations": [{"invitation_id": str(uuid.UUID(int=2)), "kind": "welcome"}]},
}

HOSTILE_CHARACTERS = [
    "\x00", "\ud800", "\udbff", "\udc00", "\udfff", "\u202e", "\u202d", "\u2066", "\u200b", "\u200d", "\ufeff",
    "\u2028", "\u2029", "\x85", "\x0b", "\x1b", "\x7f", "\u0301", "\u3164", "\U0001f600", "\uffff", "<", ">",
    "{{", "}}", "{%", "'", '"', "\\", "@", ";", "\t", "\n", "\r",
]
hostile_text = st.one_of(
    st.lists(st.one_of(st.sampled_from(HOSTILE_CHARACTERS), st.characters()), max_size=40).map("".join),
    st.just("x" * 2_000_000),
    st.just("é" * 300),
)
wrong_type = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.just([]), st.just({}),
                       st.just(10**400 // 10**300))


@st.composite
def mutated(draw: st.DrawFn, routing_key: str) -> bytes:
    body = json.loads(json.dumps(VALID_BODIES[routing_key]))
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from([*body, "unexpected"]))
        value = body.get(key)
        if isinstance(value, list) and value and isinstance(value[0], dict):
            row = dict(value[0])
            row[draw(st.sampled_from(sorted(row)))] = draw(hostile_text)
            body[key] = [row]
        elif isinstance(value, dict) and value:
            body[key] = {draw(hostile_text): draw(st.one_of(st.integers(-5, 5), hostile_text))}
        else:
            body[key] = draw(st.one_of(hostile_text, hostile_text, wrong_type))
    return json.dumps(body).encode()


def deep(levels: int) -> bytes:
    return b'{"a": ' * levels + b"1" + b"}" * levels


raw_bodies = st.one_of(
    st.binary(max_size=200),
    st.integers(100, 200_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(100, 50_000).map(deep),
    st.integers(4_000, 50_000).map(lambda n: b'{"account_id": ' + b"9" * n + b"}"),
    st.just(b'{"account_id": "' + b"a" * 2_000_000 + b'"}'),
    st.just(b"\xef\xbb\xbf{}"),
    st.just(b""),
)
hostile_property = st.one_of(
    st.lists(st.sampled_from(["\x00", "\udcff", "\udcc3", "\x07", "\n", "a", "é", " "]), min_size=1, max_size=12).map("".join),
    st.just("x" * 255),
).map(lambda text: (text + uuid.uuid4().hex)[-255:])  # unique: a reused valid message_id is a duplicate, rightly ignored


async def _no_handler(message: object, uow: object) -> None:
    return None


@dataclass(frozen=True)
class FuzzMessage:
    routing_key: str
    body: bytes
    message_id: str | None
    correlation_id: str | None
    reply_to: str | None
    headers: dict[str, Any]

    @property
    def envelope(self) -> Envelope:
        return Envelope(self.routing_key, self.body, self.message_id or None, self.correlation_id or None, self.reply_to or None, 0)

    @property
    def tag(self) -> tuple[str, str] | None:
        """How the message's `command.rejected` can be found: by correlation id or command id,
        whichever userprov can use; None when both are unusable."""
        usable = self.envelope.without_unusable_properties()
        if usable.correlation_id:
            return "correlation_id", usable.correlation_id
        if usable.message_id:
            return "command_id", usable.message_id
        return None

    def expected_refusal(self) -> bool:
        """Whether userprov must refuse it as a whole before any handler runs: the edge's own
        decision table, on the routes the contracts give the key."""
        return isinstance(read_message(self.envelope, route_table({self.routing_key: _no_handler})), Rejected)


@st.composite
def fuzz_messages(draw: st.DrawFn) -> FuzzMessage:
    routing_key = draw(st.sampled_from(sorted(VALID_BODIES)))
    body = draw(st.one_of(mutated(routing_key), mutated(routing_key), mutated(routing_key), raw_bodies))
    tag = uuid.uuid4().hex
    # no None: aiormq gives every message without an id a random one (test_refusals drives a
    # missing message_id through the dispatcher instead)
    message_id = draw(st.one_of(*[st.just(f"fuzz-{tag}")] * 4, hostile_property))
    correlation_id = draw(st.one_of(*[st.just(f"fuzz-c-{tag}")] * 4, hostile_property))
    reply_to = draw(st.one_of(*[st.none()] * 6, st.just("amq.rabbitmq.reply-to.fuzz"), hostile_property))
    header_value = st.one_of(st.integers(-(2**63), 2**63 - 1), hostile_property)
    headers = draw(st.one_of(st.just({}), st.dictionaries(hostile_property, header_value, max_size=3)))
    return FuzzMessage(routing_key, body, message_id, correlation_id, reply_to, headers)
