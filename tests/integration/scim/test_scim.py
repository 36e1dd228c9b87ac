"""`userprov scim serve` driven as Okta and Microsoft Entra drive it, against the real workers:
each answer checked over HTTP, and what it did checked in PostgreSQL, the events and the emails."""
from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import httpx

from tests.integration.conftest import address, unique
from tests.integration.scim.conftest import SCIM_JSON, Tenant
from tests.support.infra import Infra
from tests.support.smtp import RecordingSmtpServer
from userprov.operations.scim_tokens import revoke as revoke_token
from userprov_devtools.waiting import eventually


async def _membership(db: asyncpg.Pool, account_id: str, email: str) -> asyncpg.Record:
    return await db.fetchrow(
        "SELECT m.status, m.first_name, m.last_name, m.external_id, m.language,"
        " ARRAY(SELECT product FROM seat_assignments s WHERE s.membership_id = m.membership_id) AS products"
        " FROM memberships m JOIN profiles p USING (profile_id) WHERE m.account_id = $1 AND p.email = $2 AND m.status <> 'removed'",
        account_id, email)


class TestOkta:
    async def test_lookup_create_put_deactivate_reactivate(self, tenant: Any, db: asyncpg.Pool, smtp: RecordingSmtpServer) -> None:
        t = await tenant()
        email = address(unique("okta"))
        assert (await t.find(f'userName eq "{email}"'))["totalResults"] == 0

        created = await t.post_user(email, externalId="00u1abcd")
        assert created.status_code == 201, created.text
        user = created.json()
        assert user["userName"] == email and user["active"] is True and user["externalId"] == "00u1abcd"
        assert user["name"] == {"givenName": "Ada", "familyName": "Lovelace"}
        assert user["emails"] == [{"value": email, "type": "work", "primary": True}]
        assert user["meta"]["resourceType"] == "User" and user["meta"]["location"].endswith(f"/Users/{user['id']}")
        assert created.headers["location"] == user["meta"]["location"]
        row = await _membership(db, t.account_id, email)
        assert row["products"] == ["gotomeeting"] and row["language"] == "de", "the account's SCIM defaults"
        await eventually(lambda: smtp.handler.to(email), what="the welcome email")

        found = await t.find(f'userName eq "{email.upper()}"')
        assert found["totalResults"] == 1 and found["Resources"][0]["id"] == user["id"]

        replaced = {**user, "name": {"givenName": "Augusta", "familyName": "King"}}
        put = await t.client.put(f"/Users/{user['id']}", content=json.dumps(replaced), headers={"content-type": SCIM_JSON})
        assert put.status_code == 200, put.text
        assert put.json()["name"] == {"givenName": "Augusta", "familyName": "King"}
        assert (await _membership(db, t.account_id, email))["first_name"] == "Augusta"

        off = await t.patch(user["id"], {"op": "replace", "value": {"active": False}})
        assert off.status_code == 200 and off.json()["active"] is False, off.text
        row = await _membership(db, t.account_id, email)
        assert row["status"] == "deactivated" and row["products"] == [], "seats released"
        assert (await t.find(f'userName eq "{email}"'))["Resources"][0]["active"] is False, "still listed, inactive"

        on = await t.patch(user["id"], {"op": "replace", "value": {"active": True}})
        assert on.status_code == 200 and on.json()["active"] is True, on.text
        row = await _membership(db, t.account_id, email)
        assert row["status"] in ("pending", "invited") and row["products"] == ["gotomeeting"], "invited anew, with a seat"

        gone = await t.client.delete(f"/Users/{user['id']}")
        assert gone.status_code == 204
        assert (await t.client.get(f"/Users/{user['id']}")).status_code == 404
        assert await _membership(db, t.account_id, email) is None


class TestEntra:
    async def test_string_booleans_capitalised_ops_and_paths(self, tenant: Any, db: asyncpg.Pool) -> None:
        t = await tenant()
        email = address(unique("entra"))
        assert (await t.find(f'userName eq "{email}"'))["totalResults"] == 0
        user = (await t.post_user(email, externalId="e-1")).json()

        changed = await t.patch(
            user["id"],
            {"op": "Replace", "path": "name.givenName", "value": "Grace"},
            {"op": "Replace", "path": "name.familyName", "value": "Hopper"},
            {"op": "Add", "path": "externalId", "value": "e-2"},
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["name"] == {"givenName": "Grace", "familyName": "Hopper"} and changed.json()["externalId"] == "e-2"
        row = await _membership(db, t.account_id, email)
        assert (row["first_name"], row["last_name"], row["external_id"]) == ("Grace", "Hopper", "e-2")
        assert (await t.find('externalId eq "e-2"'))["totalResults"] == 1

        off = await t.patch(user["id"], {"op": "Replace", "path": "active", "value": "False"})
        assert off.status_code == 200 and off.json()["active"] is False, off.text
        assert (await _membership(db, t.account_id, email))["status"] == "deactivated"
        on = await t.patch(user["id"], {"op": "Replace", "path": "active", "value": "True"})
        assert on.status_code == 200 and on.json()["active"] is True, on.text


class TestCreation:
    async def test_two_concurrent_posts_of_one_user_name(self, tenant: Any, db: asyncpg.Pool) -> None:
        t = await tenant()
        email = address(unique("twice"))
        first, second = await asyncio.gather(t.post_user(email), t.post_user(email))
        assert sorted([first.status_code, second.status_code]) == [201, 409], (first.text, second.text)
        conflict = first if first.status_code == 409 else second
        assert conflict.json()["scimType"] == "uniqueness"
        assert await db.fetchval("SELECT count(*) FROM memberships m JOIN profiles p USING (profile_id)"
                                 " WHERE m.account_id = $1 AND p.email = $2", t.account_id, email) == 1

    async def test_a_row_error_and_no_free_seat_are_400_with_the_code(self, tenant: Any) -> None:
        t = await tenant({"gotomeeting": 1})
        bad = await t.post_user(address(unique("long")), given="x" * 40)
        assert bad.status_code == 400 and "name.givenName: too_long" in bad.json()["detail"], bad.text
        assert (await t.post_user(address(unique("first")))).status_code == 201
        full = await t.post_user(address(unique("second")))
        assert full.status_code == 400 and "no_free_seat" in full.json()["detail"], full.text


class TestTenants:
    async def test_a_token_sees_and_changes_only_its_own_account(self, tenant: Any) -> None:
        a, b = await tenant(), await tenant()
        email = address(unique("theirs"))
        theirs = (await b.post_user(email)).json()
        assert (await a.client.get(f"/Users/{theirs['id']}")).status_code == 404
        assert (await a.find(f'userName eq "{email}"'))["totalResults"] == 0
        assert (await a.find(f'id eq "{theirs["id"]}"'))["totalResults"] == 0
        assert (await a.patch(theirs["id"], {"op": "replace", "value": {"active": False}})).status_code == 404
        assert (await a.client.delete(f"/Users/{theirs['id']}")).status_code == 404
        assert (await a.post_user(email)).status_code == 201, "the same person may be added to another account"
        assert (await b.client.get(f"/Users/{theirs['id']}")).json()["active"] is True

    async def test_no_token_an_unknown_or_a_revoked_one_is_401(self, tenant: Any, infra: Infra, scim_base: str) -> None:
        t = await tenant()
        async with httpx.AsyncClient(base_url=scim_base) as anonymous:
            assert (await anonymous.get("/Users")).status_code == 401
            assert (await anonymous.get("/Users", headers={"Authorization": "Bearer " + "x" * 43})).status_code == 401
            config = await anonymous.get("/ServiceProviderConfig")
            assert config.status_code == 200, "the configuration needs no token (RFC 7644 §4)"
        assert (await t.client.get("/Users")).status_code == 200
        assert await revoke_token(infra.amqp_url, t.token_id) is None
        await eventually(lambda: _unauthorized(t), timeout=5, what="the revoked token refused")


async def _unauthorized(t: Tenant) -> bool:
    return (await t.client.get("/Users")).status_code == 401
