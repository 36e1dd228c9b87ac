"""The membership and invitation lifecycle: every status change goes through a function here,
one per arrow of ARROWS (the documentation draws them), and the rules that guard the arrows are
pure functions beside them.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal
from uuid import UUID

import asyncpg

from contracts.base import InvitationKind
from contracts.events import ResponseRefusal
from userprov import seats
from userprov.runtime.origin import Origin
from userprov.turns import turns_cte

PENDING: Final = "pending"
DEACTIVATED: Final = "deactivated"
# the status a member waits in for each kind of invitation
WAITING_FOR = {"welcome": "invited", "transfer": "transfer_pending"}
# what a resend issues, by the member's status (no entry: nothing to resend)
RESEND_KIND: dict[str, InvitationKind] = {"invited": "welcome", "transfer_pending": "transfer", "suspended": "transfer"}
OPEN_INVITATION = ("issued", "sending", "sent")


@dataclass(frozen=True)
class Arrow:
    """One change of a membership's status: from any of `sources` to `target`, caused by `by`,
    made by the functions of this module named in `functions`."""

    sources: tuple[str, ...]
    target: str
    by: str
    functions: tuple[str, ...]


_MEMBER = ("pending", "invited", "transfer_pending", "active", "suspended")
ARROWS = (
    Arrow(("pending",), "invited", "decided: active in no other account (a welcome)", ("decide",)),
    Arrow(("pending",), "transfer_pending", "decided: active in another account (a transfer)", ("decide",)),
    Arrow(("invited", "transfer_pending"), "active", "invitation.accepted", ("accept",)),
    Arrow(("transfer_pending",), "suspended", "invitation.declined", ("decline",)),
    Arrow(("invited",), "invited", "invitations.resend or .retry_failed: a new welcome", ("resend", "reissue")),
    Arrow(("transfer_pending",), "transfer_pending", "invitations.resend or .retry_failed: a new transfer", ("resend", "reissue")),
    Arrow(("suspended",), "transfer_pending", "invitations.resend", ("resend",)),
    Arrow((*_MEMBER, "deactivated"), "removed", "users.remove", ("end",)),
    Arrow(("active",), "removed", "a transfer accepted in another account", ("end",)),
    Arrow(_MEMBER, "deactivated", "users.deactivate or .update (active: false)", ("deactivate",)),
    Arrow(("deactivated",), "active", "users.reactivate or .update (active: true): had accepted, active nowhere else", ("reactivate",)),
    Arrow(("deactivated",), "pending", "users.reactivate or .update (active: true): invited anew", ("reactivate",)),
)
# where users.add puts a new member (`added_status`): arrows from no status
ENTRIES = (
    Arrow((), "pending", "users.add: a row accepted, its seats reserved", ("added_status",)),
    Arrow((), "deactivated", "users.add: a row accepted inactive (no seat, no invitation)", ("added_status",)),
)


# -- the rules (pure)


def invitation_kind(home_account_id: str | None) -> InvitationKind:
    """decide: someone active in another account is invited to transfer, anyone else welcomed."""
    return "transfer" if home_account_id else "welcome"


def resend_kind(status: str) -> InvitationKind | None:
    return RESEND_KIND.get(status)


def resend_wait_seconds(previous_age_seconds: float | None, cooldown_seconds: float, delivered: bool = True) -> int | None:
    """How long until the member may be sent another invitation (None: now). The cooldown keeps
    a person from being flooded with emails: it does not apply when the last invitation's email
    never reached them (it failed, or still waits for the SMTP server)."""
    if previous_age_seconds is None or previous_age_seconds >= cooldown_seconds or not delivered:
        return None
    return int(cooldown_seconds - previous_age_seconds) + 1


def leaves_no_admin(role: str | None, status: str, other_active_admins: int) -> bool:
    """Whether a member leaving (removed, or transferred away) would leave the account without
    an active admin."""
    return role == "admin" and status == "active" and other_active_admins == 0


def response_refusal(
    *, status: str, kind: str, membership_status: str, expires_at: datetime | None, declining: bool, now: datetime
) -> ResponseRefusal | None:
    """Why an accept or decline of an invitation in this state cannot be applied (None: it can)."""
    if status in ("accepted", "declined"):
        return "already_used"
    if status not in ("sending", "sent") or membership_status != WAITING_FOR[kind]:
        return "revoked"
    if expires_at is None or expires_at <= now:
        return "expired"
    if declining and kind != "transfer":
        return "not_declinable"
    return None


Added = Literal["pending", "deactivated"]


def added_status(active: bool) -> Added:
    """users.add: pending, with its seats, to be decided and invited; or, for a row added
    inactive (an identity provider's `active: false`), deactivated from the start as if it had
    left pending (`ADDED_INACTIVE_FROM`): no seat, no invitation, until reactivate."""
    return PENDING if active else DEACTIVATED


ADDED_INACTIVE_FROM = PENDING  # what reactivate brings a member added inactive back to: decided and invited


Reactivation = Literal["active", "pending"]


def reactivated_status(deactivated_from: str | None, active_elsewhere: bool) -> Reactivation:
    """reactivate: active again when they had accepted and are active in no other account now
    (one person is active in one account); otherwise pending, to be decided and invited anew."""
    return "active" if deactivated_from == "active" and not active_elsewhere else "pending"


# -- the arrows


@dataclass(frozen=True)
class Decision:
    membership_id: UUID
    account_id: str
    kind: InvitationKind
    from_account_id: str | None
    origin: Origin


@dataclass(frozen=True)
class Issued:
    invitation_id: UUID
    kind: InvitationKind
    origin: Origin


async def decide(conn: asyncpg.Connection, decisions: Sequence[Decision], cooldown_seconds: float) -> list[Issued]:
    """pending -> invited | transfer_pending, each with a new invitation waiting to be sent.

    The resend cooldown holds for reactivation too (a flapping identity provider, a looping
    users.deactivate/users.reactivate): an invitation decided for a member whose last email
    reached them less than `cooldown_seconds` ago is not sent before the cooldown has passed
    since that email (its `not_before`, as a retry's). Each deactivation revokes the invitation
    held meanwhile, so the one sent when the cooldown is over is the latest, with a link that
    works, and a member left deactivated gets nothing: at most one email per cooldown. Held
    rather than refused, nothing is lost, and the latest state wins. A first invitation, or one
    after emails that never reached the person (failed), is not held; the hold is computed in
    the decision's statement itself, an index probe that finds nothing for a new member (no
    round trip more for a normal add)."""
    return await _issue(conn, decisions, [0] * len(decisions), DECIDE, cooldown_seconds)


async def resend(
    conn: asyncpg.Connection, membership_id: UUID, account_id: str, kind: InvitationKind, sent_count: int,
    from_account_id: str | None, origin: Origin,
) -> tuple[UUID, list[UUID]]:
    """invited | transfer_pending | suspended -> (the same, suspended back to transfer_pending):
    the open invitation is revoked and a new one issued, carrying the count of emails sent.
    Returns the new invitation's id and those revoked."""
    revoked = await revoke_open_invitations(conn, membership_id)
    await conn.execute(
        "UPDATE memberships SET status = CASE status WHEN 'suspended' THEN 'transfer_pending' ELSE status END,"
        " status_changed_at = now() WHERE membership_id = $1",
        membership_id,
    )
    [issued] = await _issue(conn, [Decision(membership_id, account_id, kind, from_account_id, origin)], [sent_count])
    return issued.invitation_id, revoked


async def reissue(conn: asyncpg.Connection, failed: Sequence[tuple[Decision, int]]) -> list[Issued]:
    """invited | transfer_pending (the latest invitation failed) -> the same, with a new invitation
    of the failed one's kind, carrying its count of emails sent. (decision, sent_count) each."""
    return await _issue(conn, [d for d, _ in failed], [n for _, n in failed])


_ISSUE = """
WITH {decided} new AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[], $9::text[])
        WITH ORDINALITY AS t(invitation_id, membership_id, account_id, kind, from_account_id, sent_count,
                             correlation_id, traceparent, tracestate, n)
), {turns}
INSERT INTO invitations (invitation_id, membership_id, account_id, kind, status, from_account_id, sent_count, turn,
                         correlation_id, traceparent, tracestate, not_before)
SELECT new.invitation_id, new.membership_id, new.account_id, new.kind, 'issued', new.from_account_id, new.sent_count,
       turns.start + row_number() OVER (PARTITION BY new.account_id ORDER BY new.n),
       new.correlation_id, new.traceparent, new.tracestate, {not_before}
FROM new JOIN turns USING (account_id)
"""
ISSUE = _ISSUE.format(decided="", turns=turns_cte("invitations", "new"), not_before="NULL::timestamptz")
# the memberships' decision and their invitations in one statement; each held until the cooldown
# ($10 s) has passed since the last email that reached its member, if that is less than it ago
DECIDE = _ISSUE.format(
    decided="decided AS (UPDATE memberships m SET status = CASE t.kind WHEN 'welcome' THEN 'invited' ELSE 'transfer_pending' END,"
    " status_changed_at = now() FROM unnest($2::uuid[], $4::text[]) AS t(id, kind) WHERE m.membership_id = t.id),",
    turns=turns_cte("invitations", "new"),
    not_before="(SELECT max(e.sent_at) + make_interval(secs => $10::float8) FROM invitations e"
    " WHERE e.membership_id = new.membership_id AND e.sent_at > now() - make_interval(secs => $10::float8))",
)


async def _issue(conn: asyncpg.Connection, decisions: Sequence[Decision], sent_counts: Sequence[int], statement: str = ISSUE,
                 *extra: object) -> list[Issued]:
    """New invitations waiting to be sent, each account's after its own waiting ones (userprov.turns);
    `extra`: the statement's parameters after the nine of the invitations."""
    issued = [Issued(uuid.uuid4(), d.kind, d.origin) for d in decisions]
    await conn.execute(
        statement,
        [i.invitation_id for i in issued],
        [d.membership_id for d in decisions],
        [d.account_id for d in decisions],
        [d.kind for d in decisions],
        [d.from_account_id for d in decisions],
        list(sent_counts),
        [d.origin.correlation_id for d in decisions],
        [d.origin.traceparent for d in decisions],
        [d.origin.tracestate for d in decisions],
        *extra,
    )
    return issued


async def accept(conn: asyncpg.Connection, invitation_id: UUID, membership_id: UUID, moved: Mapping[str, int] | None = None) -> None:
    """invited | transfer_pending -> active; `moved`: the assets a transfer moved, per kind."""
    await _close_invitation(conn, invitation_id, "accepted", moved)
    await _set_status(conn, membership_id, "active")


async def decline(conn: asyncpg.Connection, invitation_id: UUID, membership_id: UUID) -> None:
    """transfer_pending -> suspended (seats kept)."""
    await _close_invitation(conn, invitation_id, "declined")
    await _set_status(conn, membership_id, "suspended")


async def end(conn: asyncpg.Connection, membership_id: UUID) -> tuple[dict[str, int], list[UUID]]:
    """any -> removed (by users.remove, or by leaving for another account): its seats are
    released and its open invitations revoked; returns the seats released per product and the
    invitations revoked."""
    released = await seats.release(conn, membership_id)
    revoked = await revoke_open_invitations(conn, membership_id)
    await _set_status(conn, membership_id, "removed")
    return released, revoked


async def deactivate(conn: asyncpg.Connection, membership_id: UUID) -> tuple[dict[str, int], list[UUID]]:
    """any but removed -> deactivated: its seats are released and its open invitations revoked;
    what it held and the status it left are kept for reactivate. Returns the seats released and
    the invitations revoked."""
    released = await seats.release(conn, membership_id)
    revoked = await revoke_open_invitations(conn, membership_id)
    await conn.execute(
        "UPDATE memberships SET deactivated_from = status, deactivated_products = $2::text[], status = 'deactivated',"
        " status_changed_at = now() WHERE membership_id = $1",
        membership_id, sorted(released),
    )
    return released, revoked


class NoFreeSeat(Exception):
    def __init__(self, products: Sequence[str]) -> None:
        super().__init__(", ".join(products))
        self.products = list(products)


@dataclass(frozen=True)
class Reactivated:
    status: Reactivation  # pending: invited anew once account-lookup decides
    seats: dict[str, int]


_REACTIVATE_PENDING = f"""
WITH target AS (SELECT $2::text AS account_id), {turns_cte("memberships", "target")}
UPDATE memberships m SET status = 'pending', status_changed_at = now(), turn = turns.start + 1,
       deactivated_from = NULL, deactivated_products = NULL
FROM turns WHERE m.membership_id = $1
"""


async def reactivate(conn: asyncpg.Connection, membership_id: UUID, account_id: str, profile_id: UUID) -> Reactivated:
    """deactivated -> active | pending, with a seat of every product it held (NoFreeSeat when one
    has none: the caller holds the account's lock, so the seats counted are the seats taken)."""
    row = await conn.fetchrow("SELECT deactivated_from, deactivated_products FROM memberships WHERE membership_id = $1",
                              membership_id)
    products = list(row["deactivated_products"] or [])
    short = await seats.without_free_seat(conn, account_id, products)
    if short:
        raise NoFreeSeat(short)
    await seats.assign(conn, membership_id, account_id, products)
    active_elsewhere = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM memberships WHERE profile_id = $1 AND account_id <> $2 AND status = 'active')",
        profile_id, account_id)
    status = reactivated_status(row["deactivated_from"], active_elsewhere)
    if status == "pending":
        await conn.execute(_REACTIVATE_PENDING, membership_id, account_id)
    else:
        await conn.execute(
            "UPDATE memberships SET status = 'active', status_changed_at = now(), deactivated_from = NULL,"
            " deactivated_products = NULL WHERE membership_id = $1", membership_id)
    return Reactivated(status, {p: 1 for p in products})


async def revoke_open_invitations(conn: asyncpg.Connection, membership_id: UUID) -> list[UUID]:
    """Returns the ids of those it revoked."""
    rows = await conn.fetch(
        "UPDATE invitations SET status = 'revoked' WHERE membership_id = $1 AND status = ANY($2::text[]) RETURNING invitation_id",
        membership_id,
        list(OPEN_INVITATION),
    )
    return [r["invitation_id"] for r in rows]


async def _close_invitation(conn: asyncpg.Connection, invitation_id: UUID, status: str, moved: Mapping[str, int] | None = None) -> None:
    await conn.execute("UPDATE invitations SET status = $2, responded_at = now(), moved = $3::jsonb WHERE invitation_id = $1",
                       invitation_id, status, None if moved is None else json.dumps(dict(moved)))


async def _set_status(conn: asyncpg.Connection, membership_id: UUID, status: str) -> None:
    await conn.execute(
        "UPDATE memberships SET status = $2, status_changed_at = now() WHERE membership_id = $1", membership_id, status
    )
