"""`userprov scim token create` and `revoke`: a SCIM client's bearer token is made by the command
and printed once; userprov keeps only its SHA-256 hash, resolves it to its account with
`scim_tokens.resolve`, and stops resolving it once revoked."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg

from contracts import routing
from tests.support.infra import Infra
from userprov.tokens import hash_token
from userprov_devtools.bus_client import BusClient


def scim(infra: Infra, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "userprov", "scim", "token", *args], env={**os.environ, "USERPROV_AMQP_URL": infra.amqp_url},
                          capture_output=True, text=True, timeout=90)


async def test_create_resolve_revoke(bus: BusClient, infra: Infra, db: asyncpg.Pool, account) -> None:
    account_id = await account()
    created = await asyncio.to_thread(scim, infra, "create", account_id)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    token_id = created.stderr.split()[2]
    assert len(token) >= 43 and "not shown again" in created.stderr

    resolved = await bus.query(routing.SCIM_TOKENS_RESOLVE, {"token_hash": hash_token(token).hex()})
    assert resolved == {"found": True, "account_id": account_id, "token_id": token_id}
    stored = await db.fetchrow("SELECT * FROM scim_tokens WHERE token_id = $1::uuid", token_id)
    assert bytes(stored["token_hash"]) == hash_token(token) and token not in repr(dict(stored))  # only the hash
    unknown = await bus.query(routing.SCIM_TOKENS_RESOLVE, {"token_hash": hash_token(token + "x").hex()})
    assert unknown == {"found": False, "account_id": None, "token_id": None}

    revoked = await asyncio.to_thread(scim, infra, "revoke", token_id)
    assert revoked.returncode == 0, revoked.stderr
    assert (await bus.query(routing.SCIM_TOKENS_RESOLVE, {"token_hash": hash_token(token).hex()}))["found"] is False
    again = await asyncio.to_thread(scim, infra, "revoke", token_id)  # revoking twice changes nothing
    assert again.returncode == 0, again.stderr

    nobody = await asyncio.to_thread(scim, infra, "create", "no-such-account")
    assert nobody.returncode == 1 and "unknown_account" in nobody.stderr and not nobody.stdout
    never = await asyncio.to_thread(scim, infra, "revoke", "5b6c7d8e-9f01-4a2b-8c3d-4e5f6a7b8c9d")
    assert never.returncode == 1 and "unknown_scim_token" in never.stderr
    malformed = await bus.query(routing.SCIM_TOKENS_RESOLVE, {"token_hash": "not-a-hash"})
    assert malformed["reason"] == "schema_invalid"
