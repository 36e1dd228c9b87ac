"""Handlers of the account-lookup service: welcome or transfer for each new membership, and the queries."""
from __future__ import annotations

from datetime import UTC, datetime

from contracts.events import InvitationIssued, MembershipsCreated
from contracts.queries import AccountsGet, AccountsGetReply, InvitationView, LicenceUse, UsersGet, UsersGetReply
from services.account_lookup import sql
from services.runtime.unit_of_work import UnitOfWork


async def decide_invitations(event: MembershipsCreated, uow: UnitOfWork) -> None:
    """A person active in another account is invited to transfer; anyone else gets a welcome."""
    async with uow:
        pending = await sql.pending_memberships(uow.conn, event.membership_ids)
        decisions = [
            (row["membership_id"], "transfer" if row["home_account_id"] else "welcome", row["home_account_id"])
            for row in pending
        ]
        for invitation_id, kind in await sql.invite(uow.conn, decisions):
            uow.emit(InvitationIssued(invitation_id=invitation_id, kind=kind))


async def get_user(query: UsersGet, uow: UnitOfWork) -> None:
    async with uow:
        row = await sql.user_view(uow.conn, query.account_id, query.email)
        uow.reply(user_reply(row))


async def get_account(query: AccountsGet, uow: UnitOfWork) -> None:
    async with uow:
        account, licences, members = await sql.account_view(uow.conn, query.account_id)
        if account is None:
            uow.reply(AccountsGetReply(found=False, account_id=query.account_id))
            return
        uow.reply(
            AccountsGetReply(
                found=True,
                account_id=account["account_id"],
                name=account["name"],
                status=account["status"],
                licences={r["product"]: LicenceUse(total=r["seats_total"], used=r["seats_used"]) for r in licences},
                members={r["status"]: r["n"] for r in members},
            )
        )


def user_reply(row: object) -> UsersGetReply:
    if row is None:
        return UsersGetReply(found=False)
    invitation = None
    if row["invitation_kind"] is not None:
        status = row["invitation_status"]
        if status in ("sending", "sent") and row["expires_at"] is not None and row["expires_at"] <= datetime.now(UTC):
            status = "expired"
        invitation = InvitationView(
            kind=row["invitation_kind"], status=status, expires_at=row["expires_at"], sent_count=row["sent_count"]
        )
    return UsersGetReply(
        found=True,
        user_id=row["profile_id"],
        email=row["email"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        status=row["status"],
        role=row["role"],
        products=list(row["products"]),
        language=row["language"],
        group=row["user_group"],
        settings_template=row["settings_template"],
        invitation=invitation,
    )
