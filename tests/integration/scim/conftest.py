"""The SCIM service of the session's workers, and SCIM clients of accounts of their own."""
from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import UNLIMITED_CLIENT
from tests.support.infra import Infra
from tests.support.workers import WorkerProcess
from userprov.operations.scim_tokens import create as create_token
from userprov_devtools.ports import free_port

SCIM_JSON = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
TOKEN_CACHE_SECONDS = 0.5


@contextmanager
def scim_process(worker_env: dict[str, str], log_dir: Path, **env: str) -> Iterator[str]:
    """`userprov scim serve` on a free port, publishing as a trusted platform service: its base URL."""
    port = free_port()
    process = WorkerProcess("scim", [], {**worker_env, "USERPROV_SCIM_PORT": str(port), "USERPROV_SCIM_WAIT_SECONDS": "10",
                                         "USERPROV_SCIM_TOKEN_CACHE_SECONDS": str(TOKEN_CACHE_SECONDS),
                                         "USERPROV_SCIM_REQUEST_SECONDS": "2", **env},
                            log_dir, command=["scim", "serve"], ready_log='"scim_broker_connected"')
    try:
        process.start()
        yield f"http://127.0.0.1:{port}/scim/v2"
    finally:
        returncode = process.terminate()  # also when the test failed: no process outlives its test
    assert returncode == 0
    assert not [line for line in process.lines() if "Bearer" in line or "@" in line], "a token or an address in the SCIM logs"


@pytest.fixture(scope="session")
def scim_base(infra: Infra, workers: list[WorkerProcess], worker_env: dict[str, str],
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with scim_process(worker_env, tmp_path_factory.mktemp("scim-log"), **UNLIMITED_CLIENT) as base:
        yield base


@pytest.fixture
async def tenant(account: Any, infra: Infra, scim_base: str) -> AsyncIterator[Any]:
    """An account of its own and a SCIM client with its token."""

    async def make(licences: dict[str, int] | None = None, **fields: Any) -> Tenant:
        account_id = await account(licences if licences is not None else {"gotomeeting": 10},
                                   scim={"products": ["gotomeeting"], "language": "de"}, **fields)
        created = await create_token(infra.amqp_url, account_id)
        assert created.token is not None, created.refusal
        client = httpx.AsyncClient(base_url=scim_base, headers={"Authorization": f"Bearer {created.token}"}, timeout=30)
        tenants.append(client)
        return Tenant(account_id, created.token, created.token_id, client)

    tenants: list[httpx.AsyncClient] = []
    yield make
    for client in tenants:
        await client.aclose()


class Tenant:
    def __init__(self, account_id: str, token: str, token_id: uuid.UUID, client: httpx.AsyncClient) -> None:
        self.account_id, self.token, self.token_id, self.client = account_id, token, token_id, client

    async def post_user(self, email: str, given: str = "Ada", family: str = "Lovelace", **more: Any) -> httpx.Response:
        body = {"schemas": [USER_SCHEMA], "userName": email, "name": {"givenName": given, "familyName": family},
                "emails": [{"value": email, "type": "work", "primary": True}], "active": True, **more}
        return await self.client.post("/Users", content=json.dumps(body), headers={"content-type": SCIM_JSON})

    async def patch(self, user_id: str, *operations: dict[str, Any]) -> httpx.Response:
        body = {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}
        return await self.client.patch(f"/Users/{user_id}", content=json.dumps(body), headers={"content-type": SCIM_JSON})

    async def find(self, filter_: str) -> dict[str, Any]:
        response = await self.client.get("/Users", params={"filter": filter_})
        assert response.status_code == 200, response.text
        return response.json()
