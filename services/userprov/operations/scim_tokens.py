"""SCIM bearer tokens for operators, through userprov's public interface: the token is made
here and printed once; userprov is sent only its SHA-256 hash (`scim_tokens.add`)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from uuid import UUID

from contracts import routing
from contracts.commands import ScimTokensAdd, ScimTokensRevoke
from userprov.operations.bus import public_bus, refusal_of
from userprov.tokens import hash_token, new_token


@dataclass(frozen=True)
class Created:
    token_id: UUID
    token: str | None  # None when refused
    refusal: str | None = None


async def create(amqp_url: str, account_id: str, timeout: float = 30.0) -> Created:
    token, token_id = new_token(), uuid.uuid4()
    async with public_bus(amqp_url, "userprov scim token") as bus:
        command_id = await bus.publish(routing.SCIM_TOKENS_ADD,
                                       ScimTokensAdd(account_id=account_id, token_id=token_id, token_hash=hash_token(token).hex()))
        event = await bus.outcome(command_id, timeout)
    if event.type == routing.COMMAND_REJECTED:
        return Created(token_id, None, refusal_of(event))
    return Created(token_id, token)


async def revoke(amqp_url: str, token_id: UUID, timeout: float = 30.0) -> str | None:
    """None once revoked; else why it was refused."""
    async with public_bus(amqp_url, "userprov scim token") as bus:
        command_id = await bus.publish(routing.SCIM_TOKENS_REVOKE, ScimTokensRevoke(token_id=token_id))
        event = await bus.outcome(command_id, timeout)
    return refusal_of(event) if event.type == routing.COMMAND_REJECTED else None
