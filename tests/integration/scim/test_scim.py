"""`userprov scim serve` driven as Okta and Microsoft Entra drive it, against the real workers:
each answer checked over HTTP, and what it did checked in PostgreSQL, the events and the emails."""
from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.integration.conftest import address, unique
from tests.integration.scim.conftest import SCIM_JSON, USER_SCHEMA, Tenant, scim_process
from tests.support.infra import Infra, close_connections_named
from tests.support.smtp import RecordingSmtpServer
from tests.support.workers import WorkerProcess
from userprov.operations.scim_tokens import revoke as revoke_token
from userprov_devtools.ports import free_port
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

        same_email = await t.patch(user["id"], {"op": "Replace", "path": 'emails[type eq "work"].value', "value": email})
        assert same_email.status_code == 400 and same_email.json()["scimType"] == "mutability", "emails are read-only"
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
            for hostile in ("Bearer " + "x" * 10_000, "Bearer \u00e9" * 43, "Basic dXNlcjpwYXNz", "Bearer", "bearer  " + "y" * 43):
                refused = await anonymous.get("/Users", headers={"Authorization": hostile.encode("utf-8")})
                assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer"), hostile[:20]
            config = await anonymous.get("/ServiceProviderConfig")
            assert config.status_code == 200, "the configuration needs no token (RFC 7644 §4)"
        assert (await t.client.get("/Users")).status_code == 200
        assert await revoke_token(infra.amqp_url, t.token_id) is None
        await eventually(lambda: _unauthorized(t), timeout=5, what="the revoked token refused")


async def _unauthorized(t: Tenant) -> bool:
    return (await t.client.get("/Users")).status_code == 401


class TestHostileInput:
    """Each gets a SCIM error with the right scimType, never a 500, and leaves nothing behind."""

    async def test_bodies(self, tenant: Any, db: asyncpg.Pool) -> None:
        t = await tenant()
        email = address(unique("hostile"))
        user = {"schemas": [USER_SCHEMA], "userName": email, "name": {"givenName": "A", "familyName": "B"}, "active": True}
        cases: list[tuple[str, bytes, int, str | None]] = [
            ("over-sized", json.dumps({**user, "externalId": "x" * 70_000}).encode(), 413, None),
            ("malformed JSON", b'{"schemas": [', 400, "invalidSyntax"),
            ("not an object", b"[1, 2]", 400, "invalidSyntax"),
            ("deeply nested", b"[" * 30_000 + b"]" * 30_000, 400, "invalidSyntax"),
            ("unknown attribute", json.dumps({**user, "favouriteColour": "teal"}).encode(), 400, "invalidSyntax"),
            ("wrong type", json.dumps({**user, "active": {"yes": 1}}).encode(), 400, "invalidValue"),
            ("no userName", json.dumps({k: v for k, v in user.items() if k != "userName"}).encode(), 400, "invalidValue"),
            ("not an address", json.dumps({**user, "userName": "not an address"}).encode(), 400, "invalidValue"),
            ("NUL in a name", json.dumps({**user, "name": {"givenName": "A\u0000", "familyName": "B"}}).encode(), 400, "invalidValue"),
            ("lone surrogate", b'{"schemas": ["%s"], "userName": "%s", "name": {"givenName": "\\ud800", "familyName": "B"},'
                               b' "active": true}' % (USER_SCHEMA.encode(), email.encode()), 400, "invalidSyntax"),  # no string can hold it
            ("bidi override", json.dumps({**user, "name": {"givenName": "A\u202eB", "familyName": "B"}}).encode(), 400, "invalidValue"),
        ]
        for what, body, status, scim_type in cases:
            response = await t.client.post("/Users", content=body, headers={"content-type": SCIM_JSON})
            assert response.status_code == status, (what, response.status_code, response.text[:300])
            error = response.json()
            assert error["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"], what
            assert error.get("scimType") == scim_type, (what, error)
        assert await _membership(db, t.account_id, email) is None

    async def test_queries_and_paths(self, tenant: Any) -> None:
        t = await tenant()
        for what, params, scim_type in [
            ("bad syntax", {"filter": 'userName eq'}, "invalidFilter"),
            ("unsupported operator", {"filter": 'userName sw "a"'}, "invalidFilter"),
            ("or", {"filter": 'userName eq "a@example.com" or externalId eq "b"'}, "invalidFilter"),
            ("unknown attribute", {"filter": 'title eq "boss"'}, "invalidFilter"),
            ("not", {"filter": 'not (userName eq "a@example.com")'}, "invalidFilter"),
            ("huge", {"filter": 'userName eq "' + "a" * 5000 + '"'}, None),
        ]:
            response = await t.client.get("/Users", params=params)
            if scim_type is None:
                assert response.status_code == 200 and response.json()["totalResults"] == 0, (what, response.text[:300])
            else:
                assert response.status_code == 400 and response.json()["scimType"] == scim_type, (what, response.text[:300])
        paged = await t.client.get("/Users", params={"startIndex": "-5", "count": "100000"})
        assert paged.status_code == 200 and paged.json()["startIndex"] == 1, paged.text
        assert (await t.client.get("/Users/not-a-uuid")).status_code == 404
        assert (await t.client.get("/Users/" + "9" * 5000)).status_code == 404
        assert (await t.client.get("/Groups")).status_code == 404
        assert (await t.client.post("/Bulk", content=b"{}", headers={"content-type": SCIM_JSON})).status_code == 501
        assert (await t.client.post("/Users", content=b"x=1", headers={"content-type": "text/plain"})).status_code in (400, 415)


class TestUnavailable:
    async def test_a_late_answer_is_503_and_the_retried_post_adds_no_one_twice(
            self, tenant: Any, db: asyncpg.Pool, workers: list[WorkerProcess], worker_env: dict[str, str], tmp_path: Path) -> None:
        t = await tenant()
        email = address(unique("retried"))
        with scim_process(worker_env, tmp_path, USERPROV_SCIM_WAIT_SECONDS="1", USERPROV_SCIM_TOKEN_CACHE_SECONDS="60") as base:
            async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {t.token}"}, timeout=30) as impatient:
                retry = Tenant(t.account_id, t.token, t.token_id, impatient)
                warm = await retry.post_user(address(unique("warm")))  # the token and the account's defaults are known now
                assert warm.status_code == 201, warm.text
                for worker in workers:
                    os.kill(worker.pid, signal.SIGSTOP)
                try:
                    late = await retry.post_user(email)
                finally:
                    for worker in workers:
                        os.kill(worker.pid, signal.SIGCONT)
                assert late.status_code == 503 and late.headers["retry-after"] == "5", late.text
                assert late.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
                await eventually(lambda: _membership(db, t.account_id, email), what="the first POST's add, done late")
                again = await retry.post_user(email)
                assert again.status_code == 409 and again.json()["scimType"] == "uniqueness", again.text
        assert await db.fetchval("SELECT count(*) FROM memberships m JOIN profiles p USING (profile_id)"
                                 " WHERE m.account_id = $1 AND p.email = $2", t.account_id, email) == 1


class TestBrokerConnectionLost:
    async def test_it_reconnects_and_answers_again(self, tenant: Any, infra: Infra, scim_base: str) -> None:
        t = await tenant()
        assert (await t.client.get("/Users")).status_code == 200
        assert close_connections_named(infra.vhost, "userprov scim") == 1
        async with httpx.AsyncClient(base_url=scim_base.removesuffix("/scim/v2")) as health:
            await eventually(lambda: _answers(t), timeout=15, what="SCIM answering again after its connection was closed")
            assert (await health.get("/readyz")).status_code == 200
        created = await t.post_user(address(unique("after")))
        assert created.status_code == 201, created.text


async def _answers(t: Tenant) -> bool:
    response = await t.client.get("/Users")
    assert response.status_code in (200, 503), response.text  # 503 with Retry-After while it reconnects, never a 500
    return response.status_code == 200


class TestOperable:
    async def test_health_and_metrics_on_the_metrics_port_only(self, tenant: Any, infra: Infra, worker_env: dict[str, str],
                                                              tmp_path: Path) -> None:
        t = await tenant()
        metrics_port = free_port()
        with scim_process(worker_env, tmp_path, USERPROV_METRICS_PORT=str(metrics_port)) as base:
            async with (httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {t.token}"}) as client,
                        httpx.AsyncClient(base_url=base.removesuffix("/scim/v2")) as plain):
                assert (await client.get("/Users")).status_code == 200
                assert (await plain.get("/livez")).text == "ok"
                assert (await plain.get("/readyz")).text == "ready", "no broker host or port on a public port"
                assert (await plain.get("/metrics")).status_code == 404, "metrics only on USERPROV_METRICS_PORT"
                metrics = (await plain.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        assert 'userprov_scim_requests_total{method="GET",status="200"}' in metrics
        assert "userprov_scim_request_seconds_bucket" in metrics
        [starting] = [json.loads(line) for line in (tmp_path / "worker-scim.log").read_text().splitlines() if '"scim_starting"' in line]
        assert starting["broker"] == f"127.0.0.1:5672 vhost {infra.vhost}"
        assert "database" not in starting and "smtp" not in starting, "the start line names only what SCIM connects to"
