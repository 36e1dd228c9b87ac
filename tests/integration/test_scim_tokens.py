"""`userprov scim token create` and `revoke`: a SCIM client's bearer token is made by the command
and printed once; userprov keeps only its SHA-256 hash, resolves it to its account with
`scim_tokens.resolve`, and stops resolving it once revoked."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import asyncpg

from contracts import routing
from tests.support.infra import Infra
from userprov.tokens import hash_token
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually


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


async def test_a_token_id_or_hash_added_again_is_refused_not_retried(bus: BusClient, account) -> None:
    """A token id or hash that exists already is a clear refusal (it was a unique violation,
    retried to the delivery limit and parked: found by the fuzz test)."""
    account_id = await account()
    token_id, token_hash = str(uuid.uuid4()), hash_token(f"token-{uuid.uuid4()}").hex()
    await bus.publish(routing.SCIM_TOKENS_ADD, {"account_id": account_id, "token_id": token_id, "token_hash": token_hash})
    await eventually(lambda: bus.find(routing.SCIM_TOKEN_ADDED, token_id=token_id), what="scim_token.added")
    other_hash = hash_token(f"token-{uuid.uuid4()}").hex()
    for again in ({"token_id": token_id, "token_hash": other_hash}, {"token_id": str(uuid.uuid4()), "token_hash": token_hash}):
        message_id = await bus.publish(routing.SCIM_TOKENS_ADD, {"account_id": account_id, **again})
        [refused] = await eventually(lambda: bus.find(routing.COMMAND_REJECTED, command_id=message_id), 10,  # noqa: B023
                                     what="command.rejected")
        assert refused.body["reason"] == "scim_token_exists", refused.body
    assert len(bus.find(routing.SCIM_TOKEN_ADDED, token_id=token_id)) == 1
