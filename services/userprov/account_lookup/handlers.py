"""Handlers of the account-lookup service: resends, assets and the queries (the welcome-or-transfer
decisions are taken from PostgreSQL by userprov.account_lookup.decisions)."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import asyncpg

from contracts.commands import InvitationsResend, InvitationsRetryFailed, ScimDefaults
from contracts.events import AssetCounted, AssetRecorded, InvitationIssued, InvitationsRetried, IssuedInvitation
from contracts.queries import (
    AccountsGet,
    AccountsGetReply,
    AssetCounts,
    CommandsGet,
    CommandsGetReply,
    FailedInvitation,
    InvitationsFailed,
    InvitationsFailedReply,
    InvitationsPeek,
    InvitationsPeekReply,
    InvitationView,
    LicenceUse,
    OutcomeEvent,
    ScimTokensResolve,
    ScimTokensResolveReply,
    UserListed,
    UsersGet,
    UsersGetReply,
    UsersList,
    UsersListReply,
)
from userprov import invitation_quota, lifecycle
from userprov.account_lookup import sql
from userprov.memberships import home_membership, lock_account, lock_current_membership
from userprov.permissions import Actor, acting, may_manage, permit, platform
from userprov.runtime import outcomes
from userprov.runtime.errors import Rejected
from userprov.runtime.origin import Origin
from userprov.runtime.unit_of_work import UnitOfWork
from userprov.tokens import hash_token, token_matches

INVITATION_RESENT = "invitation.resent"  # an audit action: the event is the internal invitation.issued


async def resend_invitation(cmd: InvitationsResend, uow: UnitOfWork, *, cooldown_seconds: int) -> None:
    async with uow:
        account = await lock_account(uow.conn, cmd.account_id)  # counts against the quota with the adds: userprov.invitation_quota
        actor = await acting(uow.conn, cmd.account_id, cmd.requested_by)
        membership = await lock_current_membership(uow.conn, cmd.account_id, cmd.email)
        permit(actor, membership.role)
        kind = lifecycle.resend_kind(membership.status)
        if kind is None:
            raise Rejected("not_resendable", f"A {membership.status} user has no invitation to resend.")
        if account is not None and account.invitation_quota_per_day is not None \
                and await invitation_quota.invitations_left(uow.conn, cmd.account_id) == 0:
            raise Rejected(invitation_quota.EXCEEDED, "The account's invitation quota for the rolling 24 hours is spent.")
        previous = await sql.latest_invitation(uow.conn, membership.membership_id)
        wait = lifecycle.resend_wait_seconds(previous.age_seconds if previous else None, cooldown_seconds,
                                             previous.delivered if previous else False)
        if wait is not None:
            raise Rejected("resend_cooldown", f"An invitation was issued moments ago; resend again in {wait} s.")
        from_account = None
        if kind == "transfer":
            home = await home_membership(uow.conn, membership.profile_id, cmd.account_id)
            from_account = home.account_id if home else (previous.from_account_id if previous else None)
        invitation_id = await lifecycle.resend(
            uow.conn, membership.membership_id, cmd.account_id, kind, previous.sent_count if previous else 0, from_account,
            Origin.now(uow.correlation_id),
        )
        uow.audit(INVITATION_RESENT, cmd.account_id, membership.profile_id, cmd.email,
                  {"invitation_id": str(invitation_id), "kind": kind,
                   "revoked_invitation_id": str(previous.invitation_id) if previous else None})
        uow.emit(InvitationIssued(invitations=[IssuedInvitation(invitation_id=invitation_id, kind=kind)]))


async def retry_failed_invitations(cmd: InvitationsRetryFailed, uow: UnitOfWork) -> None:
    """A fresh invitation for everyone whose latest one failed: in an account, those the acting
    user may manage; in every account, for a platform service only."""
    async with uow:
        if cmd.account_id is None:
            if cmd.requested_by is not None:
                raise Rejected("forbidden", "Only a platform service may retry the failed invitations of every account.")
            actor: Actor = platform()
        else:
            actor = await acting(uow.conn, cmd.account_id, cmd.requested_by)
        failed = [f for f in await sql.lock_failed_invitations(uow.conn, cmd.account_id) if may_manage(actor, f.role)]
        origin = Origin.now(uow.correlation_id)
        issued = await lifecycle.reissue(
            uow.conn, [(lifecycle.Decision(f.membership_id, f.account_id, f.kind, f.from_account_id, origin), f.sent_count) for f in failed]
        )
        for f in failed:
            uow.audit(INVITATION_RESENT, f.account_id, f.user_id, f.email,
                      {"failed_invitation_id": str(f.invitation_id), "kind": f.kind, "reason": f.reason})
        if issued:
            uow.emit(InvitationIssued(invitations=[IssuedInvitation(invitation_id=i.invitation_id, kind=i.kind) for i in issued]))
        uow.emit(InvitationsRetried(command_id=uow.message_id, account_id=cmd.account_id, retried=len(issued)))


async def list_failed_invitations(query: InvitationsFailed, conn: asyncpg.Connection) -> InvitationsFailedReply:
    page = await sql.failed_invitations(conn, query.account_id, query.after, query.limit)
    return InvitationsFailedReply(
        invitations=[
            FailedInvitation(invitation_id=f.invitation_id, account_id=f.account_id, user_id=f.user_id, email=f.email, kind=f.kind,
                             reason=f.reason, failed_at=f.failed_at)
            for f in page
        ],
        next_after=page[-1].invitation_id if len(page) == query.limit else None,
    )


async def record_asset(event: AssetRecorded, uow: UnitOfWork) -> None:
    """Remembers what a transfer will move; idempotent on (account, kind, ref)."""
    async with uow:
        if not await sql.account_exists(uow.conn, event.account_id):
            raise Rejected("unknown_account", f"No account {event.account_id!r}.")
        membership = await lock_current_membership(uow.conn, event.account_id, event.email)
        new = await sql.record_asset(uow.conn, event.account_id, event.kind, event.ref, membership.profile_id)
        uow.emit(
            AssetCounted(
                account_id=event.account_id, user_id=membership.profile_id, email=event.email, kind=event.kind, ref=event.ref, new=new
            )
        )


async def get_user(query: UsersGet, conn: asyncpg.Connection) -> UsersGetReply:
    return user_reply(await sql.user_view(conn, query.account_id, query.email))


async def list_users(query: UsersList, conn: asyncpg.Connection) -> UsersListReply:
    match = sql.UsersFilter(email=query.email, status=query.status, external_id=query.external_id, user_id=query.user_id,
                            active=query.active)
    total, rows = await sql.list_users(conn, query.account_id, match, query.start_index - 1, query.count)
    return UsersListReply(account_id=query.account_id, total=total, start_index=query.start_index,
                          users=[UserListed.model_validate(dict(row)) for row in rows])


async def resolve_scim_token(query: ScimTokensResolve, conn: asyncpg.Connection) -> ScimTokensResolveReply:
    found = await sql.resolve_scim_token(conn, bytes.fromhex(query.token_hash))
    if found is None:
        return ScimTokensResolveReply(found=False)
    return ScimTokensResolveReply(found=True, account_id=found["account_id"], token_id=found["token_id"])


async def get_account(query: AccountsGet, conn: asyncpg.Connection) -> AccountsGetReply:
    account = await sql.account_view(conn, query.account_id)
    if account is None:
        return AccountsGetReply(found=False, account_id=query.account_id)
    return AccountsGetReply(
        found=True,
        account_id=account.account_id,
        name=account.name,
        status=account.status,
        licences={product: LicenceUse(total=total, used=used) for product, (total, used) in account.licences.items()},
        members=account.members,
        scim=ScimDefaults.model_validate_json(account.scim_defaults) if account.scim_defaults else None,
        invitation_quota_per_day=account.invitation_quota_per_day,
        invitations_left=await invitation_quota.invitations_left(conn, account.account_id)
        if account.invitation_quota_per_day is not None else None,
    )


async def get_command(query: CommandsGet, conn: asyncpg.Connection) -> CommandsGetReply:
    found = await outcomes.find(conn, query.command_id)
    if found is None:
        return CommandsGetReply(found=False, command_id=query.command_id)
    return CommandsGetReply(
        found=True,
        command_id=query.command_id,
        command_type=found.command_type,
        outcome=found.outcome,  # type: ignore[arg-type]  # the table's CHECK holds it to the two values
        events=[OutcomeEvent(type=e["type"], body=e["body"]) for e in found.events],
    )


def user_reply(row: sql.UserView | None) -> UsersGetReply:
    if row is None:
        return UsersGetReply(found=False)
    invitation = None
    if row.invitation_kind is not None and row.invitation_status is not None and row.sent_count is not None:
        status = row.invitation_status  # the three come from one joined invitation row: all set or none
        if status in ("sending", "sent") and row.expires_at is not None and row.expires_at <= datetime.now(UTC):
            status = "expired"
        invitation = InvitationView(
            kind=row.invitation_kind, status=status, expires_at=row.expires_at, sent_count=row.sent_count
        )
    return UsersGetReply(
        found=True,
        user_id=row.profile_id,
        email=row.email,
        first_name=row.first_name,
        last_name=row.last_name,
        status=row.status,
        role=row.role,
        products=list(row.products),
        language=row.language,
        group=row.user_group,
        settings_template=row.settings_template,
        external_id=row.external_id,
        invitation=invitation,
    )


_PEEK_STATUS = {None: "open", "already_used": "used", "revoked": "revoked", "expired": "expired"}


async def peek_invitation(query: InvitationsPeek, conn: asyncpg.Connection) -> InvitationsPeekReply:
    """What the token's page shows; the same rules as an accept, which this never is."""
    found = await sql.peek(conn, hash_token(query.token))
    if found is None or not token_matches(query.token, found.token_hash):
        return InvitationsPeekReply(status="unknown")
    refusal = lifecycle.response_refusal(status=found.status, kind=found.kind, membership_status=found.member_status,
                                         expires_at=found.expires_at, declining=False, now=datetime.now(UTC))
    status = _PEEK_STATUS[refusal]
    moving = status == "open" and found.home_name is not None  # accepting takes them out of the account they are in now
    moves = None
    if moving:
        held = json.loads(found.home_assets or "{}")
        moves = AssetCounts(session_history=held.get("session_history", 0), scheduled_sessions=held.get("scheduled_session", 0),
                            upcoming_recordings=held.get("upcoming_recording", 0))
    elif found.moved is not None:
        moves = AssetCounts.model_validate_json(found.moved)
    return InvitationsPeekReply(
        status=status,  # type: ignore[arg-type]  # _PEEK_STATUS's values are the literal's
        kind=found.kind,
        account_name=found.account_name,
        language=found.language,
        email=found.email,
        first_name=found.first_name,
        expires_at=found.expires_at,
        response="accepted" if found.status == "accepted" else "declined" if found.status == "declined" else None,
        member_status=found.member_status,
        from_account_name=found.home_name if moving else found.from_name,
        moves=moves,
    )
