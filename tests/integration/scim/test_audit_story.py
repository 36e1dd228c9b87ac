"""The audit trail's whole story, through every door: the bus, the invitation page, SCIM, the
operator's command line, and userprov itself (here, beside the SCIM fixtures it needs)."""
from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from contracts import routing
from tests.integration.conftest import address
from tests.integration.test_audit_trail import audited, entries, said
from tests.integration.test_links_page import form_of
from tests.support.flows import add_active_member, add_users, emails_to, tokens_in
from tests.support.infra import Infra
from tests.support.smtp import RecordingSmtpServer
from userprov.audit.chain import first_break
from userprov.audit.expiry import audit_expired_invitations
from userprov.operations.invitations import retry_failed
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually


@pytest.fixture
async def http() -> Any:
    async with httpx.AsyncClient(timeout=15) as client:
        yield client


class TestTheWholeStory:
    """Each door's changes in the account's chain, in order, with who acted, through which door."""

    async def test_story(self, infra: Infra, links: Any, http: httpx.AsyncClient, bus: BusClient, smtp: RecordingSmtpServer,
                         db: asyncpg.Pool, tenant: Any) -> None:
        scim = await tenant()
        account_id = scim.account_id
        admin = address("auditadmin")
        await add_active_member(bus, smtp, account_id, admin, role="admin", products=["gotomeeting"])
        joining, leaving, bouncing = address("auditjoining"), address("auditleaving"), address("permfailaudit")
        people = [{"first_name": "Zoë", "last_name": "Ōtsuka", "email": joining},
                  {"first_name": "Lea", "last_name": "Ving", "email": leaving},
                  {"first_name": "Bou", "last_name": "Ncing", "email": bouncing}]
        # 1. an admin adds people over the bus
        added = await add_users(bus, {"account_id": account_id, "requested_by": admin, "products": ["gotomeeting"], "users": people})
        user_ids = {r["email"]: r["user_id"] for r in added.body["results"]}
        await eventually(lambda: bus.find(routing.INVITATION_FAILED, email=bouncing), what="the failed invitation")
        # 2. one accepts through the invitation page
        [email] = await emails_to(smtp, joining)
        shown = await http.get(f"{links[0]}?token={tokens_in(email)['link']}")
        accepted = await http.post(links[0], data={**form_of(shown, "accept"), "confirm": "yes"})
        assert accepted.status_code == 200, accepted.text
        # 3. a SCIM token deactivates another, once its invitation was sent (the story has it sent, then revoked)
        await audited(db, account_id, "invitation.sent", 3)  # the admin's, the joining one's and the leaving one's
        patched = await scim.patch(user_ids[leaving], {"op": "replace", "path": "active", "value": False})
        assert patched.status_code == 200, patched.text
        # 4. an operator retries the failed invitation
        assert (await retry_failed(infra.amqp_url, account_id)).retried == 1
        await emails_to(smtp, bouncing)  # the failed try was refused at RCPT: no email
        await audited(db, account_id, "invitation.sent", 4)
        # 5. an invitation expires, and the housekeeping sweep records it
        await db.execute("UPDATE invitations SET expires_at = now() - interval '1 second' WHERE status = 'sent'"
                         " AND membership_id IN (SELECT membership_id FROM memberships m JOIN profiles p USING (profile_id)"
                         " WHERE p.email = $1)", bouncing)
        assert await audit_expired_invitations(db) >= 1

        found = await entries(db, account_id)
        assert first_break(found) is None
        assert [e["seq"] for e in found] == list(range(1, len(found) + 1))
        token = str(scim.token_id)
        assert said(found, "account.upserted", "scim_token.added", "user.added", "user.activated", "user.deactivated",
                    "invitation.failed", "invitation.resent", "invitation.expired", "invitation.revoked") == [
            ("account.upserted", "service", "guest", "bus", None),
            ("scim_token.added", "operator", "guest", "cli", None),
            ("user.added", "service", "guest", "bus", admin),
            ("user.activated", "service", "guest", "bus", admin),  # the test client accepted it on the bus
            ("user.added", "user", admin, "bus", joining),
            ("user.added", "user", admin, "bus", leaving),
            ("user.added", "user", admin, "bus", bouncing),
            ("invitation.failed", "system", None, "system", bouncing),
            ("user.activated", "invitee", user_ids[joining], "links", joining),
            ("user.deactivated", "scim_token", token, "scim", leaving),
            ("invitation.revoked", "scim_token", token, "scim", leaving),
            ("invitation.resent", "operator", "guest", "cli", bouncing),
            ("invitation.expired", "system", None, "system", bouncing),
        ]
        joined = next(e for e in found if e["action"] == "user.added" and e["target"]["email"] == joining)
        assert joined["changes"] == {"role": None, "products": ["gotomeeting"], "language": "en", "group": None,
                                     "settings_template": None, "first_name": "Zoë", "last_name": "Ōtsuka", "external_id": None,
                                     "active": True, "row": 1}
        assert joined["message_id"] == added.body["command_id"] and joined["target"]["user_id"] == uuid.UUID(user_ids[joining])
        sent = [e for e in found if e["action"] == "invitation.sent"]
        assert sorted(e["target"]["email"] for e in sent) == sorted([admin, joining, leaving, bouncing])
        assert all((e["actor"]["kind"], e["via"]) == ("system", "system") for e in sent)
        assert [e["at"] for e in found] == sorted(e["at"] for e in found)
