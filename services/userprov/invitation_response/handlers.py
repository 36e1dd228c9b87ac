"""Handlers of the invitation-response service: accept and decline links."""
from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import structlog

from contracts import routing
from contracts.events import (
    InvitationAccepted,
    InvitationDeclined,
    InvitationResponseRejected,
    MovedAssets,
    ResponseRefusal,
    UserActivated,
    UserSuspended,
    UserTransferred,
)
from userprov import lifecycle
from userprov.invitation_response import sql
from userprov.memberships import Membership, home_membership, is_last_active_admin, lock_account
from userprov.runtime import metrics
from userprov.runtime.unit_of_work import UnitOfWork
from userprov.tokens import hash_token, token_matches


async def accept(event: InvitationAccepted, uow: UnitOfWork) -> None:
    _responded("accept", await _accept(event, uow))


async def decline(event: InvitationDeclined, uow: UnitOfWork) -> None:
    _responded("decline", await _decline(event, uow))


def _responded(response: str, refused: ResponseRefusal | None) -> None:
    """After the commit: the metric, and the reason on the message's log line (its outcome is
    `done` either way: a refusal is an answer, not a failure)."""
    metrics.RESPONSES.labels(response, "refused" if refused else "taken", refused or "").inc()
    if refused is not None:
        structlog.contextvars.bind_contextvars(refused=refused)


async def _accept(event: InvitationAccepted, uow: UnitOfWork) -> ResponseRefusal | None:
    """Activates the member. A person is active in one account at a time, so whoever is active
    elsewhere by now leaves that account, taking their assets: also when a welcome invitation
    was issued before they became active there. The refusal, if it was refused."""
    async with uow:
        opened = await _open_invitation(uow, event.token)
        if isinstance(opened, str):
            return opened
        invitation, email = opened
        home = await home_membership(uow.conn, invitation.profile_id, invitation.account_id)
        if home is not None:
            await lock_account(uow.conn, home.account_id)
            if await is_last_active_admin(uow.conn, home):
                # leaving would strand the old account without an admin: the invitation stays open
                uow.audit(routing.INVITATION_RESPONSE_REJECTED, invitation.account_id, invitation.profile_id, email,
                          {"reason": "last_admin", "invitation_id": str(invitation.invitation_id)},
                          uow.cause.invitee(str(invitation.profile_id)))
                return _refuse(uow, "last_admin", invitation)
        moved, from_account = await _leave_home_account(uow.conn, invitation, home)
        counts = MovedAssets(
            session_history=moved.get("session_history", 0),
            scheduled_sessions=moved.get("scheduled_session", 0),
            upcoming_recordings=moved.get("upcoming_recording", 0),
        )
        transferred = not (invitation.kind == "welcome" and from_account is None)
        await lifecycle.accept(uow.conn, invitation.invitation_id, invitation.membership_id,
                               counts.model_dump() if transferred else None)
        by = uow.cause.invitee(str(invitation.profile_id))
        accepted = {"invitation_id": str(invitation.invitation_id), "kind": invitation.kind}
        if not transferred:
            uow.audit(routing.USER_ACTIVATED, invitation.account_id, invitation.profile_id, email, accepted, by)
            uow.emit(UserActivated(account_id=invitation.account_id, user_id=invitation.profile_id, email=email))
            return None
        moves = {"from_account_id": from_account, "to_account_id": invitation.account_id, "moved": counts.model_dump()}
        uow.audit(routing.USER_TRANSFERRED, invitation.account_id, invitation.profile_id, email, {**accepted, **moves}, by)
        if from_account is not None:
            uow.audit(routing.USER_TRANSFERRED, from_account, invitation.profile_id, email, moves, by)
        uow.emit(
            UserTransferred(
                user_id=invitation.profile_id, email=email, from_account_id=from_account, to_account_id=invitation.account_id,
                moved=counts,
            )
        )
    return None


async def _decline(event: InvitationDeclined, uow: UnitOfWork) -> ResponseRefusal | None:
    async with uow:
        opened = await _open_invitation(uow, event.token, declining=True)
        if isinstance(opened, str):
            return opened
        invitation, email = opened
        await lifecycle.decline(uow.conn, invitation.invitation_id, invitation.membership_id)
        uow.audit(routing.USER_SUSPENDED, invitation.account_id, invitation.profile_id, email,
                  {"invitation_id": str(invitation.invitation_id), "kind": invitation.kind},
                  uow.cause.invitee(str(invitation.profile_id)))
        uow.emit(UserSuspended(account_id=invitation.account_id, user_id=invitation.profile_id, email=email))
    return None


async def _open_invitation(
    uow: UnitOfWork, token: str, *, declining: bool = False
) -> tuple[sql.AnsweredInvitation, str] | ResponseRefusal:
    """The invitation behind the token, locked, when it can still be answered, with the
    person's email; otherwise emits `invitation.response_rejected` and returns the reason."""
    token_hash = hash_token(token)
    found = await sql.find_by_token_hash(uow.conn, token_hash)
    if found is None or not token_matches(token, found.token_hash):
        return _refuse(uow, "unknown_token")
    email = await sql.lock_profile(uow.conn, found.profile_id)
    invitation = await sql.lock_invitation(uow.conn, found.invitation_id)
    reason = lifecycle.response_refusal(
        status=invitation.status,
        kind=invitation.kind,
        membership_status=invitation.membership_status,
        expires_at=invitation.expires_at,
        declining=declining,
        now=datetime.now(UTC),
    )
    if reason is not None:
        return _refuse(uow, reason, invitation)
    return invitation, email


def _refuse(uow: UnitOfWork, reason: ResponseRefusal, invitation: sql.AnsweredInvitation | None = None) -> ResponseRefusal:
    """Refuses the response; names the invitation, its account and person when the token is known."""
    if invitation is None:
        uow.emit(InvitationResponseRejected(reason=reason))
        return reason
    uow.emit(
        InvitationResponseRejected(
            reason=reason, invitation_id=invitation.invitation_id, account_id=invitation.account_id, user_id=invitation.profile_id
        )
    )
    return reason


async def _leave_home_account(
    conn: asyncpg.Connection, invitation: sql.AnsweredInvitation, home: Membership | None
) -> tuple[dict[str, int], str | None]:
    """Ends the person's membership where they are active now and moves their assets from there.
    None as the account when they have meanwhile left it: nothing to move."""
    if home is None:
        return {}, None
    await lifecycle.end(conn, home.membership_id)
    moved = await sql.move_assets(conn, invitation.profile_id, home.account_id, invitation.account_id)
    return moved, home.account_id
