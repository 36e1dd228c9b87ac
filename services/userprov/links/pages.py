"""Which page a link shows: from what `invitations.peek` says (GET) or from the event that a
response caused (POST). Pure: the app renders what this decides."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from contracts import routing
from contracts.queries import AssetCounts, InvitationsPeekReply


@dataclass(frozen=True)
class Page:
    state: str
    status: int = 200
    peeked: InvitationsPeekReply | None = None
    moves: AssetCounts | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def language(self) -> str | None:
        return self.peeked.language if self.peeked is not None else None


def title(state: str, account: str, from_account: str) -> tuple[str, dict[str, str]]:
    """The msgid of the page's title and its parameters."""
    return {
        "welcome": ("%(account)s invites you", {"account": account}),
        "transfer": ("%(account)s invites you to move your user", {"account": account}),
        "activated": ("You're in", {}),
        "already_in": ("You're already in", {}),
        "transferred": ("Your user has moved", {}),
        "suspended": ("Invitation declined", {}),
        "used": ("Invitation already answered", {}),
        "expired": ("This invitation has expired", {}),
        "revoked": ("This invitation is no longer valid", {}),
        "last_admin": ("You can't leave %(account)s yet", {"account": from_account}),
        "unknown": ("We don't know this link", {}),
        "form_expired": ("This form has expired", {}),
        "busy": ("Please try again in a moment", {}),
    }[state]


def shown(peeked: InvitationsPeekReply) -> Page:
    """What a GET shows: the invitation while it is open, else why it cannot be used (a used
    one as the result it had, so that a second submit shows what the first did)."""
    if peeked.status == "unknown":
        return Page("unknown", 404)
    if peeked.status in ("expired", "revoked"):
        return Page(peeked.status, 410, peeked)
    if peeked.status == "used":
        if peeked.response == "declined":
            return Page("suspended" if peeked.member_status == "suspended" else "used", 200, peeked)
        if peeked.member_status != "active":
            return Page("used", 200, peeked)
        return Page("transferred" if peeked.moves is not None else "already_in", 200, peeked, peeked.moves)
    moving = peeked.kind == "transfer" or peeked.from_account_name is not None
    return Page("transfer" if moving else "welcome", 200, peeked, peeked.moves)


def answered(peeked: InvitationsPeekReply, event_type: str, body: bytes) -> Page | None:
    """What a POST shows once its response's event came; None: look again (peek), the state
    changed in between (a second submit, or another tab's)."""
    if event_type == routing.USER_ACTIVATED:
        return Page("activated", 200, peeked)
    if event_type == routing.USER_TRANSFERRED:
        moved = json.loads(body).get("moved") or {}
        return Page("transferred", 200, peeked, AssetCounts.model_validate(moved))
    if event_type == routing.USER_SUSPENDED:
        return Page("suspended", 200, peeked)
    if event_type == routing.INVITATION_RESPONSE_REJECTED:
        reason = json.loads(body).get("reason")
        if reason == "last_admin":
            return Page("last_admin", 409, peeked)
        if reason == "unknown_token":
            return Page("unknown", 404)
        if reason in ("expired", "revoked"):
            return Page(reason, 410, peeked)
    return None
