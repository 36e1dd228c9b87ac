"""What Okta and Entra send by default beyond their documented examples, over HTTP against the
session's workers: a userName differing only in case is no change, Entra's manager as a plain
string and its phone and address PATCHes are taken (nothing of them kept) beside the operations
that change something, its "True"/"False" are booleans and nothing else is; every refusal names
its SCIM attribute in plain words."""
from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from tests.integration.conftest import address
from tests.integration.scim.conftest import SCIM_JSON, Tenant
from tests.integration.scim.idp_bodies import ENTERPRISE, entra_mapped_create, okta_create

PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


async def _send(t: Tenant, method: str, path: str, body: dict[str, Any]) -> Any:
    return await t.client.request(method, path, content=json.dumps(body), headers={"content-type": SCIM_JSON})


async def _patch(t: Tenant, user_id: str, *operations: dict[str, Any]) -> Any:
    return await _send(t, "PATCH", f"/Users/{user_id}", {"schemas": [PATCH_SCHEMA], "Operations": list(operations)})


async def _row(db: asyncpg.Pool, account_id: str, user_id: str) -> asyncpg.Record:
    return await db.fetchrow("SELECT m.status, m.first_name, m.external_id, p.email FROM memberships m JOIN profiles p USING (profile_id)"
                             " WHERE m.account_id = $1 AND m.profile_id = $2 AND m.status <> 'removed'", account_id, uuid.UUID(user_id))


def _plain(detail: str) -> None:
    assert "pydantic" not in detail and "validation error" not in detail and "_" not in detail.split(":")[0], detail


class TestUserNameCase:
    async def test_a_case_only_difference_is_no_change_and_a_real_change_is_refused(self, tenant: Any, db: asyncpg.Pool) -> None:
        t = await tenant()
        stored = address("ada.lovelace")
        sent = stored.replace("ada.lovelace", "Ada.Lovelace").replace("example.com", "Example.COM")
        created = await _send(t, "POST", "/Users", okta_create(sent))
        assert created.status_code == 201 and created.json()["userName"] == stored, created.text
        user_id = created.json()["id"]

        put_body = {**okta_create(sent), "id": user_id, "name": {"givenName": "Augusta", "familyName": "User"}}
        del put_body["password"]
        put = await _send(t, "PUT", f"/Users/{user_id}", put_body)
        assert put.status_code == 200 and put.json()["userName"] == stored, put.text
        assert (await _row(db, t.account_id, user_id))["first_name"] == "Augusta"

        upper = stored.replace("ada.lovelace", "ADA.LOVELACE")
        patched = await _patch(t, user_id, {"op": "Replace", "path": "userName", "value": upper},
                               {"op": "Replace", "path": "name.givenName", "value": "Ada"})
        assert patched.status_code == 200 and patched.json()["userName"] == stored, patched.text
        assert (await _row(db, t.account_id, user_id))["first_name"] == "Ada"

        other = address("someone.else")
        for refused in (await _send(t, "PUT", f"/Users/{user_id}", {**put_body, "userName": other}),
                        await _patch(t, user_id, {"op": "Replace", "path": "userName", "value": other})):
            assert refused.status_code == 400 and refused.json()["scimType"] == "mutability", refused.text
            assert "userName" in refused.json()["detail"], refused.text
        assert (await _row(db, t.account_id, user_id))["email"] == stored


class TestEntraManager:
    async def test_a_plain_string_is_taken_on_create_put_and_patch(self, tenant: Any, db: asyncpg.Pool) -> None:
        t = await tenant()
        email = address("managed")
        body = entra_mapped_create(email)
        body[ENTERPRISE] = {**body[ENTERPRISE], "manager": "a7b8c9"}
        created = await _send(t, "POST", "/Users", body)
        assert created.status_code == 201, created.text
        user = created.json()
        assert ENTERPRISE not in user, "the manager is not kept"

        put = await _send(t, "PUT", f"/Users/{user['id']}", {**body, "id": user["id"]})
        assert put.status_code == 200, put.text
        patched = await _patch(t, user["id"], {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": "a7b8c9"},
                               {"op": "Replace", "path": "externalId", "value": "mgr-1"})
        assert patched.status_code == 200, patched.text
        assert (await _row(db, t.account_id, user["id"]))["external_id"] == "mgr-1"

    async def test_a_bad_value_is_refused_in_plain_words(self, tenant: Any) -> None:
        t = await tenant()
        user = (await t.post_user(address("plain.words"))).json()
        for operation in ({"op": "Add", "path": f"{ENTERPRISE}:manager", "value": 42},
                          {"op": "Replace", "path": "name.givenName", "value": {"x": 1}},
                          {"op": "Replace", "path": "name", "value": {"givenName": ["a"]}}):
            refused = await _patch(t, user["id"], operation)
            assert refused.status_code == 400 and refused.json()["scimType"] == "invalidValue", (operation, refused.text)
            _plain(refused.json()["detail"])
        created = await _send(t, "POST", "/Users", {**okta_create(address("bad.manager")),
                                                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
                                                    ENTERPRISE: {"manager": 42}})
        assert created.status_code == 400, created.text
        _plain(created.json()["detail"])


class TestEntraPhoneAndAddress:
    async def test_its_filtered_operations_are_no_ops_and_the_others_apply(self, tenant: Any, db: asyncpg.Pool) -> None:
        t = await tenant()
        user = (await _send(t, "POST", "/Users", entra_mapped_create(address("phoned")))).json()
        for op in ("Replace", "Add"):
            patched = await _patch(t, user["id"], {"op": op, "path": 'phoneNumbers[type eq "work"].value', "value": "+1 555 0199"},
                                   {"op": op, "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 555 0198"},
                                   {"op": op, "path": 'addresses[type eq "work"].locality', "value": "Redmond"},
                                   {"op": op, "path": 'addresses[type eq "work"].formatted', "value": "1 Way, Redmond"},
                                   {"op": op, "path": "externalId", "value": f"ext-{op}"})
            assert patched.status_code == 200, patched.text
            assert "phoneNumbers" not in patched.json() and "addresses" not in patched.json()
            assert (await _row(db, t.account_id, user["id"]))["external_id"] == f"ext-{op}", "the other operation applied"
        alone = await _patch(t, user["id"], {"op": "Remove", "path": 'phoneNumbers[type eq "fax"]'})
        assert alone.status_code == 200, alone.text


class TestActive:
    async def test_only_booleans_and_entras_strings(self, tenant: Any, db: asyncpg.Pool) -> None:
        t = await tenant()
        user = (await t.post_user(address("booleans"))).json()
        for value in ("False", "TRUE", "false", "True", False, True):
            taken = await _patch(t, user["id"], {"op": "Replace", "path": "active", "value": value})
            assert taken.status_code == 200 and taken.json()["active"] is (str(value).lower() == "true"), (value, taken.text)
        for operation in ({"op": "Replace", "path": "active", "value": "yes"}, {"op": "Replace", "path": "active", "value": 1},
                          {"op": "Replace", "path": "active", "value": "maybe"}, {"op": "Replace", "value": {"active": "on"}},
                          {"op": "Replace", "value": {"active": 0}}):
            refused = await _patch(t, user["id"], operation)
            assert refused.status_code == 400 and "active" in refused.json()["detail"], (operation, refused.text)
            _plain(refused.json()["detail"])
        assert (await _row(db, t.account_id, user["id"]))["status"] != "deactivated"
        for value in ("maybe", 1, "yes"):
            created = await t.post_user(address("loose"), active=value)
            assert created.status_code == 400 and "active" in created.json()["detail"], (value, created.text)
