from __future__ import annotations

import asyncpg

from contracts import routing
from tests.integration.conftest import address
from tests.support.flows import add_users, emails_to
from tests.support.smtp import RecordingSmtpServer
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
