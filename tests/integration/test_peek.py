"""invitations.peek: what a link stands for, asked as often as a mail scanner likes, changes nothing."""
from __future__ import annotations

import json
from typing import Any

import asyncpg

from contracts import routing
from contracts.queries import InvitationsPeekReply
from tests.integration.conftest import address
from tests.integration.test_transfer import record_assets
from tests.support.flows import add_active_member, add_users, emails_to, membership_status, tokens_in
from tests.support.smtp import RecordingSmtpServer
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually


async def peek(bus: BusClient, token: str) -> dict[str, Any]:
    answer = await bus.ask(routing.INVITATIONS_PEEK, json.dumps({"token": token}).encode(), timeout=10)
    assert answer.routing_key == "invitations.peek.reply", answer.body
    InvitationsPeekReply.model_validate(answer.body)
    return answer.body


class TestPeek:
    async def test_a_welcome_peeked_again_and_again_stays_open_until_accepted(
        self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account
    ) -> None:
        account_id = await account(name="Peek & Co")
        person = address("peeked")
        await add_users(bus, {"account_id": account_id, "language": "fr",
                              "users": [{"first_name": "Pia", "last_name": "Peek", "email": person}]})
        [email] = await emails_to(smtp, person)
        token = tokens_in(email)["link"]
        for _ in range(3):
            seen = await peek(bus, token)
        assert {k: seen[k] for k in ("status", "kind", "account_name", "language", "email", "first_name", "member_status")} == {
            "status": "open", "kind": "welcome", "account_name": "Peek & Co", "language": "fr", "email": person,
            "first_name": "Pia", "member_status": "invited"}
        assert seen["expires_at"] and seen.get("moves") is None and seen.get("response") is None
        assert await membership_status(db, account_id, person) == "invited"  # looking used nothing

        await bus.publish(routing.INVITATION_ACCEPTED, {"token": token})
        await eventually(lambda: bus.find(routing.USER_ACTIVATED, email=person), what="user.activated")
        used = await peek(bus, token)
        assert (used["status"], used["response"], used["member_status"]) == ("used", "accepted", "active")

    async def test_a_transfer_shows_what_accepting_moves_then_what_it_moved(
        self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account
    ) -> None:
        old = await account(name="Old Peek Corp")
        new = await account(name="New Peek Corp")
        person = address("peekmover")
        await add_active_member(bus, smtp, old, person)
        await record_assets(bus, db, old, person)
        await add_users(bus, {"account_id": new, "users": [{"first_name": "Mo", "last_name": "Ver", "email": person}]})
        _, transfer = await emails_to(smtp, person, count=2)
        token = tokens_in(transfer)["accept"]
        counts = {"session_history": 2, "scheduled_sessions": 1, "upcoming_recordings": 1}

        seen = await peek(bus, token)
        assert (seen["status"], seen["kind"], seen["from_account_name"], seen["moves"]) == ("open", "transfer", "Old Peek Corp", counts)
        await bus.publish(routing.INVITATION_ACCEPTED, {"token": token})
        await eventually(lambda: bus.find(routing.USER_TRANSFERRED, email=person), what="user.transferred")
        await bus.publish(routing.ASSET_RECORDED, {"account_id": new, "email": person, "kind": "session_history", "ref": "later"})
        await eventually(lambda: bus.find(routing.ASSET_COUNTED, account_id=new, ref="later"), what="asset.counted")  # not moved
        moved = await peek(bus, token)
        assert (moved["status"], moved["response"], moved["from_account_name"], moved["moves"]) == (
            "used", "accepted", "Old Peek Corp", counts)

    async def test_declined_revoked_and_unknown(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        old, new = await account(), await account()
        person = address("peekdecliner")
        await add_active_member(bus, smtp, old, person)
        await add_users(bus, {"account_id": new, "users": [{"first_name": "De", "last_name": "Cline", "email": person}]})
        _, transfer = await emails_to(smtp, person, count=2)
        await bus.publish(routing.INVITATION_DECLINED, {"token": tokens_in(transfer)["decline"]})
        await eventually(lambda: bus.find(routing.USER_SUSPENDED, email=person, account_id=new), what="user.suspended")
        declined = await peek(bus, tokens_in(transfer)["decline"])
        assert (declined["status"], declined["response"], declined["member_status"]) == ("used", "declined", "suspended")

        removed = address("peekremoved")
        await add_users(bus, {"account_id": new, "users": [{"first_name": "Re", "last_name": "Moved", "email": removed}]})
        [email] = await emails_to(smtp, removed)
        await bus.publish(routing.USERS_REMOVE, {"account_id": new, "email": removed})
        await eventually(lambda: bus.find(routing.USER_REMOVED, email=removed), what="user.removed")
        assert (await peek(bus, tokens_in(email)["link"]))["status"] == "revoked"

        unknown = await peek(bus, "q2Xh0v3mZ8r5Jk1LwN4pT7yB6cE9fA0sD2gH5jK8lM1")
        assert unknown["status"] == "unknown" and not any(v for k, v in unknown.items() if k != "status")
        refused = await bus.ask(routing.INVITATIONS_PEEK, b'{"token": "a\\u0000b"}', timeout=10)
        assert refused.routing_key == routing.COMMAND_REJECTED, refused.body
