"""Which account a SCIM request acts on: its bearer token's, asked of userprov with the token's
SHA-256 hash (`scim_tokens.resolve`) through the door's lookup gate and remembered for a few
seconds, so that a revoked token stops working within that long. Valid and unknown tokens are
remembered apart: a flood of made-up tokens cannot push a tenant's out. The account is a
context variable of the request's task."""
from __future__ import annotations

import re
import time
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

from contracts import routing
from contracts.queries import ScimTokensResolve, ScimTokensResolveReply
from userprov.front_doors.lookup_gate import LookupGate
from userprov.public_bus import NoAnswer, PublicBus, acting
from userprov.tokens import hash_token

_T = TypeVar("_T")
_account: ContextVar[str] = ContextVar("scim_account")
# the tokens userprov makes are 43 characters of base64url: anything else is refused without asking userprov
PLAUSIBLE_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,256}")
# tokens remembered at most, the longest unused forgotten first: a flood takes bounded memory
REMEMBERED = 10_000  # valid ones
REMEMBERED_UNKNOWN = 10_000  # unknown or revoked ones


@dataclass(frozen=True)
class Tenant:
    account_id: str
    token_id: str | None  # said on the commands the request publishes, for the audit trail


def current_account() -> str:
    return _account.get()


def acting_for(account_id: str, token_id: str | None = None) -> None:
    _account.set(account_id)
    acting.set(token_id)


class TokenResolver:
    def __init__(self, bus: PublicBus, wait_seconds: float, remember_seconds: float, gate: LookupGate) -> None:
        self._bus = bus
        self._wait = wait_seconds
        self._remember = remember_seconds
        self._gate = gate
        # a valid token's entry outlives its time: when it comes due, its lookup's turn comes first
        self._valid: OrderedDict[bytes, tuple[float, Tenant]] = OrderedDict()
        self._unknown: OrderedDict[bytes, float] = OrderedDict()

    async def account_of(self, authorization: str | None) -> str | None:
        """The account of an `Authorization: Bearer <token>` header (see `tenant_of`)."""
        tenant = await self.tenant_of(authorization)
        return tenant.account_id if tenant else None

    async def tenant_of(self, authorization: str | None) -> Tenant | None:
        """The account and token id of an `Authorization: Bearer <token>` header; None for no
        token, an unknown or a revoked one. Raises NoAnswer when userprov does not answer
        (LookupsBusy when the lookup's turn did not come)."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not PLAUSIBLE_TOKEN.fullmatch(token):
            return None
        digest = hash_token(token)  # compared by PostgreSQL's index on the hash: no timing of the token itself
        now = time.monotonic()
        valid = self._valid.get(digest)
        if valid is not None and valid[0] > now:
            self._valid.move_to_end(digest)
            return valid[1]
        unknown = self._unknown.get(digest)
        if unknown is not None and unknown > now:
            return None
        return await self._gate.ask(digest, lambda: self._resolve(digest), known=valid is not None)

    async def _resolve(self, digest: bytes) -> Tenant | None:
        answer = await self._bus.ask(routing.SCIM_TOKENS_RESOLVE, ScimTokensResolve(token_hash=digest.hex()), self._wait)
        if answer.type == routing.COMMAND_REJECTED:
            raise NoAnswer("scim_tokens.resolve was refused")
        reply = ScimTokensResolveReply.model_validate_json(answer.body)
        until = time.monotonic() + self._remember
        if reply.account_id is None:
            self._valid.pop(digest, None)
            _remember(self._unknown, digest, until, REMEMBERED_UNKNOWN)
            return None
        tenant = Tenant(reply.account_id, str(reply.token_id) if reply.token_id else None)
        self._unknown.pop(digest, None)
        _remember(self._valid, digest, (until, tenant), REMEMBERED)
        return tenant


def _remember(known: OrderedDict[bytes, _T], digest: bytes, value: _T, at_most: int) -> None:
    known[digest] = value
    known.move_to_end(digest)
    while len(known) > at_most:
        known.popitem(last=False)
