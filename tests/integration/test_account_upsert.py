"""accounts.upsert: a field given replaces that field; a field omitted keeps its value."""
from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from contracts import routing
from contracts.commands import ScimDefaults
from tests.integration.conftest import address
from tests.support.flows import add_users
from userprov_devtools.bus_client import BusClient, RecordedEvent
from userprov_devtools.waiting import eventually

TEMPLATE = {"subject": "Hi {{ first_name }}", "body": "Join {{ account_name }}: {{ link }}"}


async def upsert(bus: BusClient, body: dict[str, Any]) -> RecordedEvent:
    """The outcome: account.upserted (caused by this command) or command.rejected."""
    message_id = await bus.publish(routing.ACCOUNTS_UPSERT, body)
    return await eventually(
        lambda: (bus.find(routing.ACCOUNT_UPSERTED, correlation_id=message_id)
                 or bus.find(routing.COMMAND_REJECTED, command_id=message_id) or [None])[0],
        what="the upsert's outcome")


async def stored(db: asyncpg.Pool, account_id: str) -> dict[str, Any]:
    row = await db.fetchrow("SELECT name, status, groups, settings_templates FROM accounts WHERE account_id = $1", account_id)
    licences = await db.fetch("SELECT product, seats_total FROM account_licences WHERE account_id = $1", account_id)
    templates = await db.fetch("SELECT language FROM welcome_templates WHERE account_id = $1", account_id)
    return {**dict(row), "licences": {r["product"]: r["seats_total"] for r in licences},
            "templates": sorted(r["language"] for r in templates)}


class TestPartialUpsert:
    async def test_omitted_fields_keep_their_value(self, bus: BusClient, db: asyncpg.Pool, account) -> None:
        account_id = await account({"gotomeeting": 5}, groups=["ops"], settings_templates=["std"],
                                   welcome_templates={"en": TEMPLATE})
        assert (await upsert(bus, {"account_id": account_id, "name": "Renamed"})).routing_key == routing.ACCOUNT_UPSERTED
        assert await stored(db, account_id) == {"name": "Renamed", "status": "active", "groups": ["ops"],
                                                "settings_templates": ["std"], "licences": {"gotomeeting": 5}, "templates": ["en"]}
        expired = await upsert(bus, {"account_id": account_id, "status": "expired"})
        assert expired.routing_key == routing.ACCOUNT_UPSERTED, expired.body
        assert (await stored(db, account_id))["status"] == "expired" and (await stored(db, account_id))["name"] == "Renamed"

    async def test_given_fields_replace_and_empty_says_none(self, bus: BusClient, db: asyncpg.Pool, account) -> None:
        account_id = await account({"gotomeeting": 5, "gotowebinar": 2}, groups=["ops", "dev"], welcome_templates={"en": TEMPLATE})
        done = await upsert(bus, {"account_id": account_id, "groups": [], "licences": {"gotowebinar": 3}, "welcome_templates": {}})
        assert done.routing_key == routing.ACCOUNT_UPSERTED
        after = await stored(db, account_id)
        assert (after["groups"], after["licences"], after["templates"]) == ([], {"gotowebinar": 3}, [])

    async def test_seats_in_use_are_checked_only_when_licences_are_given(self, bus: BusClient, db: asyncpg.Pool, account) -> None:
        account_id = await account({"gotomeeting": 2})
        await add_users(bus, {"account_id": account_id, "products": ["gotomeeting"],
                              "users": [{"first_name": "In", "last_name": "Use", "email": address("inuse")}]})
        assert (await upsert(bus, {"account_id": account_id, "name": "Still fine"})).routing_key == routing.ACCOUNT_UPSERTED
        refused = await upsert(bus, {"account_id": account_id, "licences": {}})
        assert refused.body["reason"] == "seats_in_use"
        assert (await stored(db, account_id))["licences"] == {"gotomeeting": 2}

    async def test_a_new_account_needs_a_name(self, bus: BusClient, db: asyncpg.Pool) -> None:
        account_id = f"nameless-{uuid.uuid4().hex[:8]}"
        refused = await upsert(bus, {"account_id": account_id, "licences": {"gotomeeting": 1}})
        assert refused.body["reason"] == "name_required" and refused.body["errors"][0]["field"] == "name"
        assert await db.fetchval("SELECT count(*) FROM accounts WHERE account_id = $1", account_id) == 0

    async def test_null_is_refused(self, bus: BusClient, account) -> None:
        account_id = await account()
        refused = await upsert(bus, {"account_id": account_id, "groups": None})
        assert refused.body["reason"] == "schema_invalid" and "groups" in refused.body["errors"][0]["message"]


class TestExpiredAccount:
    async def test_takes_no_new_users_and_keeps_its_members(self, bus: BusClient, db: asyncpg.Pool, account) -> None:
        account_id = await account()
        member = address("kept")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "Kept", "last_name": "Member", "email": member}]})
        await upsert(bus, {"account_id": account_id, "status": "expired"})
        refused = await add_users(bus, {"account_id": account_id, "users": [{"first_name": "New", "last_name": "One", "email": address("new")}]})
        assert refused.routing_key == routing.COMMAND_REJECTED and refused.body["reason"] == "account_expired"
        assert await db.fetchval("SELECT count(*) FROM memberships WHERE account_id = $1", account_id) == 1
        await upsert(bus, {"account_id": account_id, "status": "active"})
        again = await add_users(bus, {"account_id": account_id, "users": [{"first_name": "New", "last_name": "One", "email": address("new")}]})
        assert again.routing_key == routing.USERS_ADD_COMPLETED


class TestScimDefaults:
    async def test_set_kept_when_omitted_replaced_whole_and_answered_by_accounts_get(self, bus: BusClient, account) -> None:
        account_id = await account({"gotomeeting": 5}, groups=["ops"],
                                   scim={"products": ["gotomeeting"], "role": "manager", "language": "de", "group": "ops"})
        assert (await upsert(bus, {"account_id": account_id, "name": "Renamed"})).routing_key == routing.ACCOUNT_UPSERTED
        got = await bus.query(routing.ACCOUNTS_GET, {"account_id": account_id})
        assert got["scim"] == {"products": ["gotomeeting"], "role": "manager", "language": "de", "group": "ops",
                               "settings_template": None}
        assert (await upsert(bus, {"account_id": account_id, "scim": {"language": "fr"}})).routing_key == routing.ACCOUNT_UPSERTED
        got = await bus.query(routing.ACCOUNTS_GET, {"account_id": account_id})
        assert got["scim"] == {"products": [], "role": None, "language": "fr", "group": None, "settings_template": None}

    async def test_an_unsupported_language_is_refused(self, bus: BusClient, account) -> None:
        account_id = await account({"gotomeeting": 5})
        refused = await upsert(bus, {"account_id": account_id, "scim": {"language": "xx"}})
        assert refused.routing_key == routing.COMMAND_REJECTED and refused.body["reason"] == "unsupported_language"
        assert refused.body["errors"][0]["field"] == "scim.language"

    async def test_they_name_only_groups_templates_and_products_of_the_account(self, bus: BusClient, account) -> None:
        """Every SCIM create is a users.add of the defaults: naming what the account lacks, each would be refused."""
        account_id = await account({"gotomeeting": 5})
        defaults = {"products": ["gotomeeting", "gotowebinar"], "language": "de", "group": "ops", "settings_template": "std"}
        refused = await upsert(bus, {"account_id": account_id, "scim": defaults})
        assert (refused.routing_key, refused.body["reason"]) == (routing.COMMAND_REJECTED, "unknown_group")
        assert [(e["field"], e["code"]) for e in refused.body["errors"]] == [
            ("scim.group", "unknown_group"), ("scim.settings_template", "unknown_settings_template"),
            ("scim.products", "unknown_product")]
        assert "'gotowebinar'" in refused.body["errors"][2]["message"]
        assert (await bus.query(routing.ACCOUNTS_GET, {"account_id": account_id}))["scim"] is None
        # the same upsert that gives them may name them
        done = await upsert(bus, {"account_id": account_id, "scim": defaults, "groups": ["ops"], "settings_templates": ["std"],
                                  "licences": {"gotomeeting": 5, "gotowebinar": 0}})
        assert done.routing_key == routing.ACCOUNT_UPSERTED, done.body

    async def test_what_they_name_is_not_removed_under_them(self, bus: BusClient, account) -> None:
        account_id = await account({"gotomeeting": 5, "gotowebinar": 2}, groups=["ops", "dev"], settings_templates=["std"],
                                   scim={"products": ["gotowebinar"], "group": "ops", "settings_template": "std"})
        for removal, field in (({"groups": ["dev"]}, "scim.group"), ({"settings_templates": []}, "scim.settings_template"),
                               ({"licences": {"gotomeeting": 5}}, "scim.products")):
            refused = await upsert(bus, {"account_id": account_id, **removal})
            assert refused.routing_key == routing.COMMAND_REJECTED, removal
            assert [e["field"] for e in refused.body["errors"]] == [field]
            assert "keep it, or change `scim` in the same upsert" in refused.body["errors"][0]["message"]
        got = await bus.query(routing.ACCOUNTS_GET, {"account_id": account_id})
        assert got["licences"].keys() == {"gotomeeting", "gotowebinar"}
        assert (await upsert(bus, {"account_id": account_id, "groups": ["ops"]})).routing_key == routing.ACCOUNT_UPSERTED
        # removed together with the defaults that named them
        done = await upsert(bus, {"account_id": account_id, "groups": [], "settings_templates": [], "licences": {"gotomeeting": 5},
                                  "scim": {"products": ["gotomeeting"]}})
        assert done.routing_key == routing.ACCOUNT_UPSERTED, done.body

    async def test_defaults_lacking_a_name_already_do_not_block_other_changes(self, bus: BusClient, db: asyncpg.Pool,
                                                                              account) -> None:
        """Defaults set before the rule existed may name a group the account lacks: an upsert that
        does not remove it is no worse for it; one that gives `scim` states them anew."""
        account_id = await account({"gotomeeting": 5}, groups=["dev"])
        legacy = ScimDefaults(group="gone").model_dump_json()
        await db.execute("UPDATE accounts SET scim_defaults = $2::jsonb WHERE account_id = $1", account_id, legacy)
        for change in ({"name": "Renamed"}, {"groups": ["dev", "qa"]}, {"licences": {"gotomeeting": 6}}):
            assert (await upsert(bus, {"account_id": account_id, **change})).routing_key == routing.ACCOUNT_UPSERTED, change
        refused = await upsert(bus, {"account_id": account_id, "scim": {"group": "gone"}})
        assert [e["field"] for e in refused.body["errors"]] == ["scim.group"]

