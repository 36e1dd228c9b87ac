from __future__ import annotations

import asyncio
import uuid

import asyncpg

from contracts import routing
from tests.integration.conftest import address
from tests.support.flows import add_users, emails_to, tokens_in
from tests.support.infra import Infra, message_counts
from tests.support.smtp import RecordingSmtpServer
from userprov_devtools.bus_client import BusClient, RecordedEvent
from userprov_devtools.waiting import eventually


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


class TestRepublishedInvitationIssued:
    """A second copy of one invitation.issued (as an outbox relay republishes after a crash),
    arriving while the first is still being mailed, sends no second email."""

    async def test_copy_during_a_slow_send(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, infra: Infra, account) -> None:
        account_id = await account()
        person = address("tempfail-copy")  # the first RCPT gets 451: the first attempt is in its backoff
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Co", "last_name": "Py", "email": person}]})
        user_id = await eventually(lambda: db.fetchval("SELECT profile_id FROM profiles WHERE email = $1", person))
        invitation_id = await db.fetchval(
            "SELECT i.invitation_id FROM invitations i JOIN memberships m USING (membership_id) WHERE m.profile_id = $1", user_id)
        [issued] = await eventually(lambda: [e for e in bus.find(routing.INVITATION_ISSUED) if names(e, invitation_id)])
        await bus.publish(routing.INVITATION_ISSUED, issued.body, message_id=issued.message_id)
        await bus.publish(routing.INVITATION_ISSUED, issued.body, message_id=issued.message_id)
        [email] = await emails_to(smtp, person)
        await eventually(lambda: db.fetchval("SELECT status = 'sent' FROM invitations WHERE invitation_id = $1", invitation_id))
        await eventually(lambda: message_counts(infra.vhost)[routing.queue_name(routing.INVITATION_MAILING)] == 0,
                         what="both copies handled")
        await bus.publish(routing.INVITATION_ACCEPTED, {"token": tokens_in(email)["link"]})
        await eventually(lambda: bus.find(routing.USER_ACTIVATED, email=person))
        assert len(smtp.handler.to(person)) == 1
        assert len(bus.find(routing.INVITATION_SENT, email=person)) == 1


def names(issued: RecordedEvent, invitation_id: uuid.UUID) -> bool:
    """Whether an invitation.issued (as recorded: other tests publish hostile ones) holds the invitation."""
    chunk = issued.body.get("invitations")
    return isinstance(chunk, list) and any(isinstance(i, dict) and i.get("invitation_id") == str(invitation_id) for i in chunk)
