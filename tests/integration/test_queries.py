from __future__ import annotations

import json
import uuid

import asyncpg
import pytest

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
        assert acct["scim"] is None, "no SCIM defaults set"
        assert acct["invitation_quota_per_day"] is None and acct["invitations_left"] is None, "no quota set"

    async def test_unknown_ids(self, bus: BusClient) -> None:
        assert (await bus.query(routing.USERS_GET, {"account_id": "nobody-here", "email": "x@example.com"}))["found"] is False
        assert (await bus.query(routing.ACCOUNTS_GET, {"account_id": "nobody-here"})) == {
            "found": False, "account_id": "nobody-here", "name": None, "status": None, "licences": {}, "members": {}, "scim": None,
            "invitation_quota_per_day": None, "invitations_left": None}


class TestUsersList:
    """users.list: an account's current members a page at a time, oldest first, filtered by email
    or status; the removed are not listed, the deactivated are."""

    async def test_pages_filters_and_statuses(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        account_id, other = await account({"gotomeeting": 10}), await account({"gotomeeting": 10})
        people = [address(f"list{n}") for n in range(5)]
        for n, person in enumerate(people):  # one command each: a known order of membership
            await add_users(bus, {"account_id": account_id, "products": ["gotomeeting"],
                                  "users": [{"first_name": "List", "last_name": person[:8], "email": person, "external_id": f"idp-{n}"}]})
        await add_users(bus, {"account_id": other, "users": [{"first_name": "Else", "last_name": "Where", "email": address("else")}]})
        await bus.publish(routing.USERS_REMOVE, {"account_id": account_id, "email": people[1]})
        await eventually(lambda: bus.find(routing.USER_REMOVED, email=people[1]), what="user.removed")
        await bus.publish(routing.USERS_DEACTIVATE, {"account_id": account_id, "email": people[2]})
        await eventually(lambda: bus.find(routing.USER_DEACTIVATED, email=people[2]), what="user.deactivated")

        first = await bus.query(routing.USERS_LIST, {"account_id": account_id, "count": 2})
        second = await bus.query(routing.USERS_LIST, {"account_id": account_id, "start_index": 3, "count": 2})
        assert first["total"] == second["total"] == 4
        assert [u["email"] for u in first["users"] + second["users"]] == [people[0], people[2], people[3], people[4]]
        assert first["users"][1]["status"] == "deactivated" and first["users"][1]["products"] == []
        assert first["users"][0]["products"] == ["gotomeeting"] and first["users"][0]["first_name"] == "List"

        only = await bus.query(routing.USERS_LIST, {"account_id": account_id, "email": people[3].upper()})
        assert only["total"] == 1 and [u["email"] for u in only["users"]] == [people[3]]
        assert only["users"][0]["external_id"] == "idp-3"
        by_external_id = await bus.query(routing.USERS_LIST, {"account_id": account_id, "external_id": "idp-4"})
        assert [u["email"] for u in by_external_id["users"]] == [people[4]]
        user_id = by_external_id["users"][0]["user_id"]
        by_id = await bus.query(routing.USERS_LIST, {"account_id": account_id, "user_id": user_id})
        assert [u["email"] for u in by_id["users"]] == [people[4]]
        assert (await bus.query(routing.USERS_LIST, {"account_id": other, "user_id": user_id}))["total"] == 0  # not another's
        assert (await bus.query(routing.USERS_LIST, {"account_id": account_id, "external_id": "IDP-4"}))["total"] == 0  # exact
        assert (await bus.query(routing.USERS_GET, {"account_id": account_id, "email": people[0]}))["external_id"] == "idp-0"
        deactivated = await bus.query(routing.USERS_LIST, {"account_id": account_id, "status": "deactivated"})
        assert [u["email"] for u in deactivated["users"]] == [people[2]]
        assert (await bus.query(routing.USERS_LIST, {"account_id": account_id, "active": False}))["users"] == deactivated["users"]
        active = await bus.query(routing.USERS_LIST, {"account_id": account_id, "active": True})
        assert [u["email"] for u in active["users"]] == [people[0], people[3], people[4]], "every status but deactivated"
        beyond = await bus.query(routing.USERS_LIST, {"account_id": account_id, "start_index": 9})
        assert beyond == {"account_id": account_id, "total": 4, "start_index": 9, "users": []}
        counted = await bus.query(routing.USERS_LIST, {"account_id": account_id, "count": 0})
        assert counted["total"] == 4 and counted["users"] == []
        nobody = await bus.query(routing.USERS_LIST, {"account_id": "no-such-account"})
        assert nobody["total"] == 0 and nobody["users"] == []  # an account's members only, never another's
        refused = await bus.query(routing.USERS_LIST, {"account_id": account_id, "count": 501})
        assert refused["reason"] == "schema_invalid"


class TestQueriesAlwaysAnswer:
    """A query is answered to reply_to whatever it holds: the answer, or the refusal."""

    async def test_the_answer_is_typed_and_leaves_no_trace(self, bus: BusClient, db: asyncpg.Pool) -> None:
        message_id = str(uuid.uuid4())
        first = await bus.ask(routing.ACCOUNTS_GET, b'{"account_id": "nobody-here"}', message_id=message_id)
        again = await bus.ask(routing.ACCOUNTS_GET, b'{"account_id": "nobody-here"}', message_id=message_id)
        assert first.routing_key == again.routing_key == "accounts.get.reply"
        assert first.body == again.body and first.body["found"] is False
        assert await db.fetchval("SELECT count(*) FROM inbox WHERE message_id = $1", message_id) == 0

    @pytest.mark.parametrize(("body", "reason"), [
        (b'{"account_id": ', "malformed_json"),
        (b'{"account_id": "has space and \\u0000"}', "schema_invalid"),
        (b'{"account_id": "acme", "email": "not an address"}', "schema_invalid"),
        (b'[]', "schema_invalid"),
    ])
    async def test_a_refused_query_is_answered_with_the_refusal(self, bus: BusClient, body: bytes, reason: str) -> None:
        key = routing.USERS_GET if b"email" in body else routing.ACCOUNTS_GET
        correlation_id = f"refused-{uuid.uuid4()}"
        answer = await bus.ask(key, body, correlation_id=correlation_id)
        assert answer.routing_key == routing.COMMAND_REJECTED
        assert answer.correlation_id == correlation_id
        assert answer.body["reason"] == reason and answer.body["type"] == key
        await eventually(lambda: bus.find(routing.COMMAND_REJECTED, correlation_id=correlation_id), what="the event as well")

    async def test_the_same_refused_query_is_answered_each_time(self, bus: BusClient) -> None:
        message_id = str(uuid.uuid4())
        for _ in range(2):
            answer = await bus.ask(routing.ACCOUNTS_GET, b"nonsense", message_id=message_id)
            assert answer.body["reason"] == "malformed_json" and answer.body["command_id"] == message_id

    async def test_a_query_without_reply_to_is_refused(self, bus: BusClient) -> None:
        message_id = await bus.publish(routing.USERS_GET, {"account_id": "acme", "email": "x@example.com"})
        [refused] = await eventually(lambda: bus.find(routing.COMMAND_REJECTED, command_id=message_id))
        assert refused.body["reason"] == "missing_reply_to"


class TestCommandsGet:
    """A caller that lost its confirm (or the event) asks what became of its command."""

    async def test_a_completed_command(self, bus: BusClient, account) -> None:
        account_id = await account()
        person = address("outcome")
        completed = await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Out", "last_name": "Come", "email": person}]})
        command_id = completed.body["command_id"]
        answer = await bus.ask(routing.COMMANDS_GET, json.dumps({"command_id": command_id}).encode())
        assert answer.routing_key == "commands.get.reply"
        assert answer.body["found"] is True and answer.body["outcome"] == "done" and answer.body["command_type"] == routing.USERS_ADD
        [event] = answer.body["events"]
        assert event["type"] == routing.USERS_ADD_COMPLETED and event["body"] == completed.body

    @pytest.mark.parametrize("body", [b'{"account_id": "no-such-account", "users": []}', b"not json"])
    async def test_a_refused_command(self, bus: BusClient, body: bytes) -> None:
        command_id = await bus.publish_raw(routing.USERS_ADD, body)
        [refused] = await eventually(lambda: bus.find(routing.COMMAND_REJECTED, command_id=command_id))
        answer = await bus.query(routing.COMMANDS_GET, {"command_id": command_id})
        assert answer["outcome"] == "rejected"
        assert answer["events"] == [{"type": routing.COMMAND_REJECTED, "body": refused.body}]

    async def test_an_unknown_command(self, bus: BusClient) -> None:
        assert await bus.query(routing.COMMANDS_GET, {"command_id": "never-sent"}) == {
            "found": False, "command_id": "never-sent", "command_type": None, "outcome": None, "events": []}
