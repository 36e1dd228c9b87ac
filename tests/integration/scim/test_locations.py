"""Where SCIM says its resources are: `Location` only on a 201 (RFC 7644 §3.3), and
`meta.location` from USERPROV_SCIM_BASE_URL whatever the Host header; unset, from a Host that is
a host name or address, and any other Host is a 400, never a 500."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.integration.conftest import address, unique
from tests.integration.scim.conftest import SCIM_JSON, USER_SCHEMA, Tenant, scim_process
from tests.support.raw_http import HOSTILE_HOSTS, exchange, get

PUBLIC = "https://scim.example.com/scim/v2"  # as behind a TLS ingress
CONFIG = "/scim/v2/ServiceProviderConfig"  # needs no token


def port_of(base: str) -> int:
    port = urlsplit(base).port
    assert port is not None
    return port


class TestLocation:
    async def test_only_a_201_has_one(self, tenant: Any) -> None:
        t = await tenant()
        email = address(unique("located"))
        created = await t.post_user(email)
        assert created.status_code == 201 and created.headers["location"] == created.json()["meta"]["location"], created.text
        user_id = created.json()["id"]
        others = {
            "409": await t.post_user(email),
            "400": await t.client.post("/Users", content=b'{"schemas": [', headers={"content-type": SCIM_JSON}),
            "list": await t.client.get("/Users"),
            "get": await t.client.get(f"/Users/{user_id}"),
            "404": await t.client.get("/Users/not-a-user"),
            "patch": await t.patch(user_id, {"op": "replace", "value": {"active": False}}),
            "discovery": await t.client.get("/ServiceProviderConfig"),
            "delete": await t.client.delete(f"/Users/{user_id}"),
        }
        assert {what: r.status_code for what, r in others.items()} == {
            "409": 409, "400": 400, "list": 200, "get": 200, "404": 404, "patch": 200, "discovery": 200, "delete": 204}
        assert {what: r.headers.get("location") for what, r in others.items()} == dict.fromkeys(others)


class TestPublicBaseUrl:
    async def test_locations_are_the_setting_whatever_the_host(self, tenant: Any, worker_env: dict[str, str], tmp_path: Path) -> None:
        t = await tenant()
        with scim_process(worker_env, tmp_path, USERPROV_SCIM_BASE_URL=PUBLIC + "/") as base:
            async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {t.token}", "Host": "evil.example"},
                                         timeout=30) as client:
                scim = Tenant(t.account_id, t.token, t.token_id, client)
                created = await scim.post_user(address(unique("public")))
                assert created.status_code == 201, created.text
                user = created.json()
                assert created.headers["location"] == user["meta"]["location"] == f"{PUBLIC}/Users/{user['id']}"
                assert (await client.get(f"/Users/{user['id']}")).json()["meta"]["location"] == f"{PUBLIC}/Users/{user['id']}"
                listed = await scim.find(f'id eq "{user["id"]}"')
                assert listed["Resources"][0]["meta"]["location"] == f"{PUBLIC}/Users/{user['id']}"

            for what, host in HOSTILE_HOSTS.items():
                for version in ("HTTP/1.1", "HTTP/1.0"):
                    status, _, body = await exchange(port_of(base), get(CONFIG, host, version))
                    if host is None and version == "HTTP/1.1":
                        assert status == 400, what  # uvicorn's (h11's): HTTP/1.1 requires a Host
                        continue
                    assert status == 200, (what, version, status, body[:300])
                    assert json.loads(body)["meta"]["location"] == f"{PUBLIC}/ServiceProviderConfig", what


class TestHostHeader:
    async def test_without_the_setting_a_host_that_is_no_host_is_400(self, tenant: Any, scim_base: str) -> None:
        t = await tenant()
        port = port_of(scim_base)
        for what, host in HOSTILE_HOSTS.items():
            for version in ("HTTP/1.1", "HTTP/1.0"):
                for path, auth in ((CONFIG, b""), ("/scim/v2/Users", f"Authorization: Bearer {t.token}\r\n".encode())):
                    status, headers, body = await exchange(port, get(path, host, version, auth))
                    assert status == 400, (what, version, path, status, body[:300])
                    if host is not None or version == "HTTP/1.0":  # else uvicorn's own 400: HTTP/1.1 requires a Host
                        assert json.loads(body)["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"], what
                        assert "location" not in headers, what
        status, _, body = await exchange(port, get(CONFIG, b"two.example", extra=b"Host: one.example\r\n"))
        assert status == 400, "two Host headers"
        for host in (b"scim.example.com", b"SCIM.example.com:8443", b"10.0.0.7:8090", b"[2001:db8::7]:8090", b"localhost"):
            status, _, body = await exchange(port, get(CONFIG, host))
            assert status == 200 and json.loads(body)["meta"]["location"] == f"http://{host.decode()}/scim/v2/ServiceProviderConfig"

    async def test_a_user_created_under_another_host_is_located_under_that_one(self, tenant: Any) -> None:
        t = await tenant()
        body = {"schemas": [USER_SCHEMA], "userName": address(unique("hosted")), "name": {"givenName": "A", "familyName": "B"},
                "active": True}
        created = await t.client.post("/Users", content=json.dumps(body), headers={"content-type": SCIM_JSON, "Host": "scim.example.net"})
        assert created.status_code == 201, created.text
        assert created.headers["location"] == f"http://scim.example.net/scim/v2/Users/{created.json()['id']}"
