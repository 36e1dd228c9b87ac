"""The audit's own action names (where no public event announces the change), and entries that
several services write alike."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from uuid import UUID

USER_ADDED = "user.added"  # an accepted row of users.add (no event announces one row)
INVITATION_RESENT = "invitation.resent"  # invitations.resend and retry_failed (the event is the internal invitation.issued)
INVITATION_REVOKED = "invitation.revoked"  # by a removal, a deactivation or a resend
INVITATION_EXPIRED = "invitation.expired"  # found by the housekeeping sweep


class Audits(Protocol):
    def audit(self, action: str, account_id: str, user_id: UUID | None = None, email: str | None = None,
              changes: Mapping[str, Any] | None = None) -> None: ...


def audit_revoked(unit: Audits, account_id: str, user_id: UUID, email: str, revoked: Sequence[UUID], by: str) -> None:
    """An entry per invitation the change revoked; `by`: the change's action."""
    for invitation_id in revoked:
        unit.audit(INVITATION_REVOKED, account_id, user_id, email, {"invitation_id": str(invitation_id), "by": by})
