"""Which account a SCIM request acts on: its bearer token's, asked of userprov with the token's
SHA-256 hash (`scim_tokens.resolve`) and remembered for a few seconds, so that a revoked token
stops working within that long. The account is a context variable of the request's task."""
from __future__ import annotations

import re
import time
from collections import OrderedDict
from contextvars import ContextVar

from contracts import routing
from contracts.queries import ScimTokensResolve, ScimTokensResolveReply
from userprov.public_bus import NoAnswer, PublicBus
from userprov.tokens import hash_token

_account: ContextVar[str] = ContextVar("scim_account")
# the tokens userprov makes are 43 characters of base64url: anything else is refused without asking userprov
PLAUSIBLE_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,256}")
REMEMBERED = 10_000  # tokens remembered at most (the oldest go first): a flood of made-up tokens takes bounded memory


def current_account() -> str:
    return _account.get()


def acting_for(account_id: str) -> None:
    _account.set(account_id)


class TokenResolver:
    def __init__(self, bus: PublicBus, wait_seconds: float, remember_seconds: float) -> None:
        self._bus = bus
        self._wait = wait_seconds
        self._remember = remember_seconds
        self._known: OrderedDict[bytes, tuple[float, str | None]] = OrderedDict()

    async def account_of(self, authorization: str | None) -> str | None:
        """The account of an `Authorization: Bearer <token>` header; None for no token, an
        unknown or a revoked one. Raises NoAnswer when userprov does not answer."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not PLAUSIBLE_TOKEN.fullmatch(token):
            return None
        digest = hash_token(token)  # compared by PostgreSQL's index on the hash: no timing of the token itself
        remembered = self._known.get(digest)
        if remembered is not None and remembered[0] > time.monotonic():
            return remembered[1]
        answer = await self._bus.ask(routing.SCIM_TOKENS_RESOLVE, ScimTokensResolve(token_hash=digest.hex()), self._wait)
        if answer.type == routing.COMMAND_REJECTED:
            raise NoAnswer("scim_tokens.resolve was refused")
        account_id = ScimTokensResolveReply.model_validate_json(answer.body).account_id
        self._known[digest] = (time.monotonic() + self._remember, account_id)
        self._known.move_to_end(digest)
        while len(self._known) > REMEMBERED:
            self._known.popitem(last=False)
        return account_id
