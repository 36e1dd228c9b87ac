"""What Okta and Microsoft Entra ID send with their default attribute mappings, as their
documentation shows it (the addresses made example.com ones), answered over HTTP by
`userprov scim serve` and checked in PostgreSQL: the attributes userprov keeps are kept,
the others accepted and dropped. A create with `active: false` is one command: the person is
deactivated from the start, holds no seat and is never invited. A PUT or PATCH changing
several things applies all of them or none."""
from __future__ import annotations

import json
from typing import Any

import asyncpg

from tests.integration.conftest import address
from tests.integration.scim.conftest import SCIM_JSON, USER_SCHEMA, Tenant
from tests.integration.scim.idp_bodies import (
    ENTERPRISE,
    ENTRA_PATCH,
    ENTRA_PATCH_COMPLIANT,
    entra_create,
    entra_mapped_create,
    okta_create,
    okta_put,
)
from tests.support.smtp import RecordingSmtpServer
from userprov_devtools.waiting import eventually

NOT_KEPT = ("displayName", "locale", "password", "groups", "title", "preferredLanguage", "roles", "phoneNumbers", "addresses",
            "timezone", ENTERPRISE)


async def _member(db: asyncpg.Pool, account_id: str, email: str) -> asyncpg.Record | None:
    return await db.fetchrow(
        "SELECT m.status, m.first_name, m.last_name, m.external_id, m.language,"
        " ARRAY(SELECT product FROM seat_assignments s WHERE s.membership_id = m.membership_id) AS products,"
        " ARRAY(SELECT status FROM invitations i WHERE i.membership_id = m.membership_id) AS invitations"
        " FROM memberships m JOIN profiles p USING (profile_id) WHERE m.account_id = $1 AND p.email = $2 AND m.status <> 'removed'",
        account_id, email)


async def _send(t: Tenant, method: str, path: str, body: dict[str, Any]) -> Any:
    return await t.client.request(method, path, content=json.dumps(body), headers={"content-type": SCIM_JSON})


def _nothing_unkept(user: dict[str, Any]) -> None:
    assert not set(user) & set(NOT_KEPT), "an attribute userprov does not keep is never returned"
    assert set(user["name"]) == {"givenName", "familyName"}
    assert user["emails"] == [{"value": user["userName"], "type": "work", "primary": True}]


class TestOkta:
    async def test_its_default_create_and_put(self, tenant: Any, db: asyncpg.Pool, smtp: RecordingSmtpServer) -> None:
        t = await tenant()
        email = address("test.user")
        created = await _send(t, "POST", "/Users", okta_create(email))
        assert created.status_code == 201, created.text
        user = created.json()
        assert (user["userName"], user["name"], user["externalId"], user["active"]) == (
            email, {"givenName": "Test", "familyName": "User"}, "00ujl29u0le5T6Aj10h7", True)
        _nothing_unkept(user)
        row = await _member(db, t.account_id, email)
        assert (row["first_name"], row["last_name"], row["language"], row["products"]) == ("Test", "User", "en", ["gotomeeting"]), \
            "locale en-US is English, not the account's SCIM default (de)"
        await eventually(lambda: smtp.handler.to(email), what="the welcome email")

        put = await _send(t, "PUT", f"/Users/{user['id']}", okta_put(user["id"], email))
        assert put.status_code == 200, put.text
        assert put.json()["name"] == {"givenName": "Another", "familyName": "User"} and put.json()["active"] is True
        _nothing_unkept(put.json())
        row = await _member(db, t.account_id, email)
        assert (row["first_name"], row["external_id"], row["language"]) == ("Another", "00ujl29u0le5T6Aj10h7", "en")


class TestEntra:
    async def test_the_tutorials_create(self, tenant: Any, db: asyncpg.Pool) -> None:
        t = await tenant()
        email = address("entra")
        created = await _send(t, "POST", "/Users", entra_create(email))
        assert created.status_code == 201, created.text
        assert created.json()["name"] == {"givenName": "givenName", "familyName": "familyName"}
        _nothing_unkept(created.json())
        row = await _member(db, t.account_id, email)
        assert (row["status"], row["external_id"], row["language"]) == ("invited", "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef", "de")

    async def test_its_default_mappings_create_and_patches(self, tenant: Any, db: asyncpg.Pool) -> None:
        t = await tenant()
        email = address("entra.mapped")
        created = await _send(t, "POST", "/Users", entra_mapped_create(email))
        assert created.status_code == 201, created.text
        user = created.json()
        _nothing_unkept(user)
        assert (await _member(db, t.account_id, email))["language"] == "fr", "preferredLanguage fr-FR"

        for body, names in ((ENTRA_PATCH, ("Gtfd", "Pkqf")), (ENTRA_PATCH_COMPLIANT, ("Kkom", "Unua"))):
            patched = await _send(t, "PATCH", f"/Users/{user['id']}", body)
            assert patched.status_code == 200, patched.text
            assert patched.json()["name"] == {"givenName": names[0], "familyName": names[1]}
            _nothing_unkept(patched.json())
            row = await _member(db, t.account_id, email)
            assert (row["first_name"], row["last_name"], row["external_id"]) == (*names, "Eqpj")
        language = await _send(t, "PATCH", f"/Users/{user['id']}",
                               {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                "Operations": [{"op": "Replace", "path": "preferredLanguage", "value": "it-IT"}]})
        assert language.status_code == 200, language.text
        assert (await _member(db, t.account_id, email))["language"] == "it"


class TestWhatIsTakenAndRefused:
    async def test_a_create_without_active_is_active(self, tenant: Any, db: asyncpg.Pool, smtp: RecordingSmtpServer) -> None:
        t = await tenant()
        email = address("no.active")
        body = {"schemas": [USER_SCHEMA], "userName": email, "name": {"givenName": "Ada", "familyName": "Lovelace"}}
        created = await _send(t, "POST", "/Users", body)
        assert created.status_code == 201 and created.json()["active"] is True, created.text
        await eventually(lambda: smtp.handler.to(email), what="the welcome email")

    async def test_attributes_of_unknown_schemas_are_refused(self, tenant: Any, db: asyncpg.Pool) -> None:
        t = await tenant()
        email = address("unknown.schema")
        body = okta_create(email)
        for what, hostile in [
            ("an undeclared extension", {**body, "schemas": [*body["schemas"], "urn:example:params:scim:schemas:extension:hr:2.0:User"],
                                         "urn:example:params:scim:schemas:extension:hr:2.0:User": {"shoeSize": 44}}),
            ("an undeclared extension's attributes alone", {**body, "urn:example:params:scim:schemas:extension:hr:2.0:User": {"a": 1}}),
            ("an attribute the enterprise extension has not", {**body, ENTERPRISE: {"shoeSize": 44}}),
            ("a sub-attribute the core schema has not", {**body, "name": {"givenName": "A", "familyName": "B", "nickname": "C"}}),
            ("a Group's attribute", {**body, "members": []}),
        ]:
            refused = await _send(t, "POST", "/Users", hostile)
            assert refused.status_code == 400 and refused.json()["scimType"] == "invalidSyntax", (what, refused.text)
        assert await _member(db, t.account_id, email) is None


class TestCreatedInactive:
    async def test_one_command_no_seat_no_invitation_until_active(self, tenant: Any, db: asyncpg.Pool,
                                                                   smtp: RecordingSmtpServer) -> None:
        t = await tenant({"gotomeeting": 2})
        colleague, hire, other, later = address("colleague"), address("future.hire"), address("other"), address("later.hire")
        assert (await t.post_user(colleague)).status_code == 201
        created = await t.post_user(hire, given="Future", family="Hire", active=False)
        assert created.status_code == 201 and created.json()["active"] is False, created.text
        row = await _member(db, t.account_id, hire)
        assert (row["status"], row["products"], row["invitations"]) == ("deactivated", [], []), "no seat, no invitation"
        assert (await t.post_user(other)).status_code == 201, "the second seat is still free"
        assert (await t.post_user(later, active=False)).status_code == 201, "created inactive in a full account"

        on = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "value": {"active": True}}]}
        full = await _send(t, "PATCH", f"/Users/{created.json()['id']}", on)
        assert full.status_code == 400 and "no_free_seat" in full.json()["detail"], full.text
        other_id = (await t.find(f'userName eq "{other}"'))["Resources"][0]["id"]
        assert (await t.client.delete(f"/Users/{other_id}")).status_code == 204
        back = await _send(t, "PATCH", f"/Users/{created.json()['id']}", on)
        assert back.status_code == 200 and back.json()["active"] is True, back.text
        [invitation] = await eventually(lambda: smtp.handler.to(hire), what="the invitation, once active")
        assert "Future" in invitation.text
        row = await _member(db, t.account_id, hire)
        assert row["products"] == ["gotomeeting"] and row["status"] in ("invited", "pending"), dict(row)
        assert (await _member(db, t.account_id, later))["invitations"] == []


class TestAllOrNothing:
    async def test_a_patch_of_names_and_active_refused_changes_no_name(self, tenant: Any, db: asyncpg.Pool) -> None:
        t = await tenant({"gotomeeting": 1})
        person, other = address("person"), address("other")
        user = (await t.post_user(person, given="Ada", family="Lovelace")).json()
        off = await t.patch(user["id"], {"op": "replace", "value": {"active": False}})
        assert off.status_code == 200, off.text
        assert (await t.post_user(other)).status_code == 201  # takes the seat the person left

        both = await t.patch(user["id"], {"op": "Replace", "path": "name.givenName", "value": "Augusta"},
                             {"op": "Replace", "path": "externalId", "value": "x-1"},
                             {"op": "Replace", "path": "active", "value": "True"})
        assert both.status_code == 400 and "no_free_seat" in both.json()["detail"], both.text
        row = await _member(db, t.account_id, person)
        assert (row["first_name"], row["external_id"], row["status"]) == ("Ada", None, "deactivated"), "nothing applied"
        assert (await t.client.get(f"/Users/{user['id']}")).json()["name"]["givenName"] == "Ada"
