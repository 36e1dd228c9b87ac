"""The audit entries of expired invitations. Nothing changes when an invitation expires (its link
is refused from then on), so no transaction records it: the housekeeping sweep finds the sent
invitations whose time ran out, records `invitation.expired` for each (by the system), and marks
them so, in one transaction per batch."""
from __future__ import annotations

import asyncpg

from userprov.audit.chain import format_at
from userprov.runtime.unit_of_work import publish_nothing, transaction

INVITATION_EXPIRED = "invitation.expired"
BATCH = 1000

MARK_EXPIRED = """
UPDATE invitations i SET expiry_audited_at = now()
FROM memberships m JOIN profiles p USING (profile_id)
WHERE i.invitation_id IN (SELECT invitation_id FROM invitations
                          WHERE status = 'sent' AND expiry_audited_at IS NULL AND expires_at < now()
                          ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
  AND m.membership_id = i.membership_id
RETURNING i.invitation_id, i.account_id, m.profile_id, p.email, i.kind, i.expires_at, i.correlation_id
"""


async def audit_expired_invitations(pool: asyncpg.Pool, batch: int = BATCH) -> int:
    """Records the invitations that expired since the last sweep; returns how many."""
    recorded = 0
    while True:
        async with transaction(pool, publish_nothing) as tx:
            rows = await tx.conn.fetch(MARK_EXPIRED, batch)
            for r in sorted(rows, key=lambda r: (r["expires_at"], r["invitation_id"])):
                tx.audit(INVITATION_EXPIRED, r["account_id"], r["profile_id"], r["email"],
                         {"invitation_id": str(r["invitation_id"]), "kind": r["kind"], "expires_at": format_at(r["expires_at"])},
                         r["correlation_id"])
        recorded += len(rows)
        if len(rows) < batch:
            return recorded
