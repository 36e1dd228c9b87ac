from __future__ import annotations

import asyncpg

from contracts import routing
from tests.integration.conftest import address
from tests.support.flows import add_users, emails_to
from tests.support.smtp import RecordingSmtpServer
from userprov.settings import Settings
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually


class TestSmtpFailures:
    """Temporary SMTP failures are retried; permanent ones are reported and the user stays."""

    async def test_451_then_250_sends_one_email(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        account_id = await account()
        person = address("tempfail")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Temp", "last_name": "Fail", "email": person}]})
        await emails_to(smtp, person)
        [sent] = await eventually(lambda: bus.find(routing.INVITATION_SENT, email=person))
        assert sent.body["sent_count"] == 1
        assert [code for rcpt, code in smtp.handler.refusals if rcpt == person] == [451]
        assert len(smtp.handler.to(person)) == 1
        assert not bus.find(routing.INVITATION_FAILED, email=person)

    async def test_550_reports_invitation_failed(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        account_id = await account()
        person = address("reject")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Re", "last_name": "Ject", "email": person}]})
        [failed] = await eventually(lambda: bus.find(routing.INVITATION_FAILED, email=person))
        assert failed.body["account_id"] == account_id
        assert "550" in failed.body["reason"]
        assert not smtp.handler.to(person)
        row = await db.fetchrow(
            "SELECT m.status, i.status AS invitation FROM memberships m JOIN profiles p USING (profile_id)"
            " JOIN invitations i USING (membership_id) WHERE p.email = $1", person)
        assert dict(row) == {"status": "invited", "invitation": "failed"}

    async def test_a_failed_invitation_can_be_resent_at_once(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        """The resend cooldown keeps a person from being flooded: it does not hold back a resend
        for someone whose last email never reached them."""
        account_id = await account()
        person = address("reject-then-resend")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Re", "last_name": "Send", "email": person}]})
        await eventually(lambda: bus.find(routing.INVITATION_FAILED, email=person))
        message_id = await bus.publish(routing.INVITATIONS_RESEND, {"account_id": account_id, "email": person})
        await eventually(lambda: len(bus.find(routing.INVITATION_FAILED, email=person)) == 2, what="the resend tried (550 again)")
        assert not bus.find(routing.COMMAND_REJECTED, command_id=message_id)


class TestPooledConnections:
    """Emails go over a few reused connections; a connection that drops or is closed with a 421
    in the middle of a chunk loses no email and doubles none."""

    async def test_a_chunk_goes_over_a_few_reused_connections(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        account_id = await account()
        people = [address(f"pooled{n}") for n in range(40)]
        await add_users(bus, {"account_id": account_id, "pasted": "\n".join(f"Pool Member{n} {p}" for n, p in enumerate(people))})
        emails = [e for p in people for e in await emails_to(smtp, p)]
        connections = {e.connection for e in emails}
        # 2 worker processes with at most USERPROV_SMTP_CONNECTIONS (and one kept for small work) each;
        # a connection per email would be 40
        assert len(connections) <= 2 * (Settings().smtp_connections + 1) < 40, f"{len(connections)} connections for 40 emails"

    async def test_dropped_connection_and_421_mid_chunk(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        account_id = await account()
        people = [address(f"chunk{n}") for n in range(12)]
        people[3] = address("dropconn")
        people[8] = address("busy421")
        await add_users(bus, {"account_id": account_id, "pasted": "\n".join(f"Chunk Member{n} {p}" for n, p in enumerate(people))})
        for person in people:
            await emails_to(smtp, person)
        sent = await eventually(lambda: [e for e in bus.find(routing.INVITATION_SENT, account_id=account_id)]
                                if len(bus.find(routing.INVITATION_SENT, account_id=account_id)) >= len(people) else None)
        assert sorted(e.body["email"] for e in sent) == sorted(people)
        assert {(rcpt, code) for rcpt, code in smtp.handler.refusals if rcpt in (people[3], people[8])} == {
            (people[3], 0), (people[8], 421)}
        assert [len(smtp.handler.to(p)) for p in people] == [1] * len(people)
        assert not bus.find(routing.INVITATION_FAILED, account_id=account_id)
