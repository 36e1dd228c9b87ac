from __future__ import annotations

from contracts import routing
from tests.integration.conftest import address
from tests.support.flows import add_users, emails_to
from tests.support.smtp import RecordingSmtpServer
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually


class TestQueries:
    """users.get and accounts.get answer to reply_to with the caller's correlation_id."""

    async def test_users_get_and_accounts_get(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        account_id = await account({"gotomeeting": 4, "gotowebinar": 2}, name="Acme", groups=["ops"], settings_templates=["std"])
        person = address("query")
        await add_users(bus, {
            "account_id": account_id, "products": ["gotomeeting", "gotowebinar"], "role": "manager", "language": "fr",
            "group": "ops", "settings_template": "std",
            "users": [{"first_name": "Zoë", "last_name": "Query", "email": person}]})
        await emails_to(smtp, person)
        await eventually(lambda: bus.find(routing.INVITATION_SENT, email=person))

        user = await bus.query(routing.USERS_GET, {"account_id": account_id, "email": person.upper()})
        assert user["found"] is True
        assert {k: user[k] for k in ("email", "first_name", "status", "role", "products", "language", "group", "settings_template")} == {
            "email": person, "first_name": "Zoë", "status": "invited", "role": "manager",
            "products": ["gotomeeting", "gotowebinar"], "language": "fr", "group": "ops", "settings_template": "std"}
        assert user["invitation"]["kind"] == "welcome"
        assert user["invitation"]["status"] == "sent"
        assert user["invitation"]["sent_count"] == 1

        acct = await bus.query(routing.ACCOUNTS_GET, {"account_id": account_id})
        assert acct["found"] is True and acct["name"] == "Acme" and acct["status"] == "active"
        assert acct["licences"] == {"gotomeeting": {"total": 4, "used": 1}, "gotowebinar": {"total": 2, "used": 1}}
        assert acct["members"] == {"invited": 1}

    async def test_unknown_ids(self, bus: BusClient) -> None:
        assert (await bus.query(routing.USERS_GET, {"account_id": "nobody-here", "email": "x@example.com"}))["found"] is False
        assert (await bus.query(routing.ACCOUNTS_GET, {"account_id": "nobody-here"})) == {
            "found": False, "account_id": "nobody-here", "name": None, "status": None, "licences": {}, "members": {}}
