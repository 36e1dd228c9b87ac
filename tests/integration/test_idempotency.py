from __future__ import annotations

import asyncio

import asyncpg

from contracts import routing
from tests.integration.conftest import address
from services.client import BusClient
from tests.support.flows import add_users, emails_to, tokens_in
from tests.support.smtp import RecordingSmtpServer
from tests.support.wait import eventually


class TestSameMessageIdTakesEffectOnce:
    """A message published again with the same message_id has one effect (the inbox)."""

    async def test_users_add_published_three_times(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        account_id = await account({"gotomeeting": 10})
        people = [address(f"idem{n}") for n in range(3)]
        body = {
            "account_id": account_id,
            "users": [{"first_name": "Idem", "last_name": f"Potent{n}", "email": e} for n, e in enumerate(people)],
            "products": ["gotomeeting"],
        }
        message_id = "users-add-idempotent-" + account_id
        for _ in range(3):
            await bus.publish(routing.USERS_ADD, body, message_id=message_id)
        for person in people:
            await emails_to(smtp, person)
        await eventually(lambda: len(bus.find(routing.INVITATION_SENT, account_id=account_id)) == 3)
        await asyncio.sleep(0)  # nothing more to wait for: the duplicates were handled before the emails
        assert len(bus.find(routing.USERS_ADD_COMPLETED, command_id=message_id)) == 1
        assert all(len(smtp.handler.to(p)) == 1 for p in people)
        assert await db.fetchval("SELECT count(*) FROM memberships WHERE account_id = $1", account_id) == 3
        assert await db.fetchval("SELECT seats_used FROM account_licences WHERE account_id = $1", account_id) == 3
        assert await db.fetchval("SELECT count(*) FROM inbox WHERE service = 'user-creation' AND message_id = $1", message_id) == 1

    async def test_accept_published_three_times(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        account_id = await account()
        person = address("accept3")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "A", "last_name": "Three", "email": person}]})
        [email] = await emails_to(smtp, person)
        body = {"token": tokens_in(email)["link"]}
        for _ in range(3):
            await bus.publish(routing.INVITATION_ACCEPTED, body, message_id="accept-thrice-" + account_id, correlation_id="c-" + account_id)
        await eventually(lambda: bus.find(routing.USER_ACTIVATED, email=person))
        # A fresh accept with a new message_id is answered, so the three above were all handled by now.
        await bus.publish(routing.INVITATION_ACCEPTED, body, correlation_id="late-" + account_id)
        await eventually(lambda: bus.find(routing.INVITATION_RESPONSE_REJECTED, correlation_id="late-" + account_id))
        assert len(bus.find(routing.USER_ACTIVATED, email=person)) == 1
        assert not bus.find(routing.INVITATION_RESPONSE_REJECTED, correlation_id="c-" + account_id)
