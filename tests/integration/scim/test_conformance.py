"""scim2-tester checks the SCIM endpoint as an identity provider's client would, against the
real service and workers: every check that applies to what /ServiceProviderConfig declares
must pass."""
from __future__ import annotations

import asyncio
import itertools
import uuid
from typing import Annotated, Any

import httpx2
from pydantic import Field
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import CaseExact, Mutability, Required, ScimProvider, Uniqueness
from scim2_tester import Status, check_server

from userprov.scim.resources import CONFIG, Name, User

_people = itertools.count()


class ConformanceName(Name):
    """What userprov takes as a name: 1 to 32 characters (scim2-tester would send 36-character uuids)."""

    given_name: Annotated[str | None, Required.true] = Field(default=None, examples=["Ada", "Grace", "Żaneta", "Alan"])
    family_name: Annotated[str | None, Required.true] = Field(default=None, examples=["Lovelace", "Hopper", "Kowalska"])


def model_for_the_tester() -> type[User]:
    """The service's User, with the values userprov's rules take: a userName is an email
    address (scim2-tester would send a uuid), and a different one each time."""
    addresses = [f"tester{next(_people)}-{uuid.uuid4().hex[:8]}@conformance.example.com" for _ in range(2000)]

    class ConformanceUser(User):
        user_name: Annotated[str | None, Uniqueness.server, Required.true, Mutability.immutable, CaseExact.false] = Field(
            default=None, examples=addresses)
        name: Annotated[ConformanceName | None, Required.true] = None  # type: ignore[assignment]

    return ConformanceUser


def run_checks(base_url: str, token: str) -> list[Any]:
    with httpx2.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        client = SyncSCIMClient(http, provider=ScimProvider(models=[model_for_the_tester()], config=CONFIG))
        return check_server(client)


async def test_scim2_tester_passes_every_applicable_check(tenant: Any) -> None:
    t = await tenant({"gotomeeting": 200})
    results = await asyncio.to_thread(run_checks, str(t.client.base_url).rstrip("/"), t.token)
    failed = [(r.title, r.status.name, r.reason) for r in results if r.status not in (Status.SUCCESS, Status.SKIPPED)]
    print("\n".join(f"{r.status.name:8} {r.title}: {r.reason or r.description or ''}"[:200] for r in results))
    assert not failed, failed
    assert sum(r.status == Status.SUCCESS for r in results) >= 20, [(r.title, r.status.name) for r in results]
