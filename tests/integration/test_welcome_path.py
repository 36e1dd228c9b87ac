from __future__ import annotations

import asyncpg

from contracts import routing
from tests.integration.conftest import address
from tests.support.flows import add_users, emails_to, tokens_in
from tests.support.smtp import RecordingSmtpServer
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually


class TestWelcomePath:
    """A pasted list becomes per-row results, one welcome email per new person, and activation on accept."""

    async def test_pasted_list_to_activation(self, bus: BusClient, smtp: RecordingSmtpServer, db: asyncpg.Pool, account) -> None:
        account_id = await account({"gotomeeting": 5, "gotowebinar": 5}, groups=["sales"])
        ada, alan, grace = address("ada"), address("alan"), address("grace")
        pasted = f"Ada Lovelace {ada};\nAlan Mathison Turing {alan}\n\n; Grace\tHopper Murray\t{grace.upper()} ; broken entry"
        completed = await add_users(
            bus,
            {"account_id": account_id, "pasted": pasted, "products": ["gotomeeting"], "language": "en", "group": "sales"},
            correlation_id="corr-welcome",
        )
        assert completed.routing_key == routing.USERS_ADD_COMPLETED
        assert completed.correlation_id == "corr-welcome"
        results = completed.body["results"]
        assert [(r["row"], r["outcome"]) for r in results] == [(1, "accepted"), (2, "accepted"), (3, "accepted"), (4, "rejected")]
        assert results[2]["email"] == grace  # stored trimmed and lower-cased
        assert results[3]["errors"][0]["code"] == "entry_format"

        for person in (ada, alan, grace):
            [email] = await emails_to(smtp, person)
            assert "Create your password" in email.text or "create your password" in email.text
            assert email.part("html").count('href="https://links.example.com/invitation?token=') == 1
        alan_row = await db.fetchrow(
            "SELECT m.first_name, m.last_name, m.status, m.user_group FROM memberships m JOIN profiles p USING (profile_id)"
            " WHERE p.email = $1",
            alan,
        )
        assert dict(alan_row) == {"first_name": "Alan", "last_name": "Mathison Turing", "status": "invited", "user_group": "sales"}
        sent = await eventually(lambda: bus.find(routing.INVITATION_SENT, email=ada))
        assert sent[0].body["kind"] == "welcome" and sent[0].body["sent_count"] == 1
        assert sent[0].correlation_id == "corr-welcome"

        [ada_email] = smtp.handler.to(ada)
        token = tokens_in(ada_email)["link"]
        await bus.publish(routing.INVITATION_ACCEPTED, {"token": token}, correlation_id="corr-accept")
        activated = await eventually(lambda: bus.find(routing.USER_ACTIVATED, email=ada))
        assert activated[0].body["account_id"] == account_id
        assert activated[0].correlation_id == "corr-accept"
        status = await db.fetchval(
            "SELECT m.status FROM memberships m JOIN profiles p USING (profile_id) WHERE p.email = $1", ada
        )
        assert status == "active"
        seats = await db.fetchval(
            "SELECT seats_used FROM account_licences WHERE account_id = $1 AND product = 'gotomeeting'", account_id
        )
        assert seats == 3

        await bus.publish(routing.INVITATION_ACCEPTED, {"token": token}, correlation_id="corr-accept-again")
        again = await eventually(lambda: bus.find(routing.INVITATION_RESPONSE_REJECTED, correlation_id="corr-accept-again"))
        assert again[0].body == {"reason": "already_used", "invitation_id": sent[0].body["invitation_id"],
                                 "account_id": account_id, "user_id": activated[0].body["user_id"]}

    async def test_unknown_and_undeclinable_tokens(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        await bus.publish(routing.INVITATION_ACCEPTED, {"token": "not-a-real-token"}, correlation_id="corr-unknown")
        unknown = await eventually(lambda: bus.find(routing.INVITATION_RESPONSE_REJECTED, correlation_id="corr-unknown"))
        assert unknown[0].body == {"reason": "unknown_token", "invitation_id": None, "account_id": None, "user_id": None}

        account_id = await account()
        person = address("decliner")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "De", "last_name": "Cliner", "email": person}]})
        [email] = await emails_to(smtp, person)
        await bus.publish(routing.INVITATION_DECLINED, {"token": tokens_in(email)["link"]}, correlation_id="corr-decline-welcome")
        refused = await eventually(lambda: bus.find(routing.INVITATION_RESPONSE_REJECTED, correlation_id="corr-decline-welcome"))
        assert refused[0].body["reason"] == "not_declinable" and refused[0].body["account_id"] == account_id
