"""Queries on `userprov.commands`, answered to the message's `reply_to` with its `correlation_id`."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from contracts.base import NAME_MAX, AccountId, AccountStatus, Contract, InvitationKind, MembershipStatus, Role, TokenHash
from contracts.commands import ScimDefaults
from contracts.email import EmailAddress, StoredEmail


class UsersGet(Contract):
    account_id: AccountId
    email: EmailAddress


class InvitationView(Contract):
    kind: InvitationKind
    status: str = Field(description="issued, sending, sent, accepted, declined, revoked, failed or expired.")
    expires_at: datetime | None
    sent_count: int


class UsersGetReply(Contract):
    found: bool
    user_id: UUID | None = None
    email: StoredEmail | None = None
    first_name: str | None = Field(default=None, max_length=NAME_MAX)
    last_name: str | None = Field(default=None, max_length=NAME_MAX)
    status: MembershipStatus | None = None
    role: Role | None = None
    products: list[str] = Field(default_factory=list)
    language: str | None = None
    group: str | None = None
    settings_template: str | None = None
    external_id: str | None = Field(default=None, description="As given in `users.add`.")
    invitation: InvitationView | None = None


USERS_LIST_MAX = 500


class UsersList(Contract):
    """An account's current members (not the removed), a page at a time, oldest membership
    first (a stable order: a member added meanwhile comes last; those added by one command in a
    fixed order of their own): what an identity provider's SCIM client lists or filters."""

    account_id: AccountId
    email: EmailAddress | None = Field(default=None, description="Only this person (at most one member).")
    user_id: UUID | None = Field(default=None, description="Only this person (at most one member).")
    external_id: str | None = Field(default=None, min_length=1, max_length=255, description="Only members with this `external_id`"
                                    " (compared exactly).")
    status: MembershipStatus | None = Field(default=None, description="Only members in this status.")
    active: bool | None = Field(default=None, description="true: only members not deactivated; false: only the deactivated"
                                " (SCIM's `active`).")
    start_index: int = Field(default=1, ge=1, le=2**31 - 1, description="1-based position of the first member answered.")
    count: int = Field(default=100, ge=0, le=USERS_LIST_MAX, description="At most this many members (0: only the total).")


class UserListed(Contract):
    user_id: UUID
    email: StoredEmail
    first_name: str = Field(max_length=NAME_MAX)
    last_name: str = Field(max_length=NAME_MAX)
    status: MembershipStatus
    role: Role | None
    products: list[str] = Field(description="Products whose seat they hold (none while deactivated).")
    language: str
    group: str | None
    settings_template: str | None
    external_id: str | None
    added_at: datetime
    status_changed_at: datetime


class UsersListReply(Contract):
    account_id: str
    total: int = Field(description="Members matching the query, on every page.")
    start_index: int
    users: list[UserListed]


class ScimTokensResolve(Contract):
    """Which account a SCIM bearer token acts on: asked with the token's SHA-256 hash."""

    token_hash: TokenHash


class ScimTokensResolveReply(Contract):
    found: bool = Field(description="False for a token never added, or revoked.")
    account_id: str | None = None
    token_id: UUID | None = None


class AccountsGet(Contract):
    account_id: AccountId


class LicenceUse(Contract):
    total: int
    used: int


class AccountsGetReply(Contract):
    found: bool
    account_id: str
    name: str | None = None
    status: AccountStatus | None = None
    licences: dict[str, LicenceUse] = Field(default_factory=dict)
    members: dict[str, int] = Field(default_factory=dict, description="Members per membership status.")
    scim: ScimDefaults | None = Field(default=None, description="What people added through SCIM get, when set.")


class CommandsGet(Contract):
    """What became of a command: for a caller that lost its publisher confirm, or its event."""

    command_id: str = Field(min_length=1, max_length=255, description="The command's `message_id`.")


class OutcomeEvent(Contract):
    type: str = Field(description="The event's name (its routing key), e.g. `users.add.completed`.")
    body: dict[str, Any] = Field(description="The event as it was published; its schema is the one of `type`.")


class CommandsGetReply(Contract):
    found: bool = Field(description="False when no command with that id was handled (yet), or it was forgotten.")
    command_id: str
    command_type: str | None = Field(default=None, description="The command's routing key.")
    outcome: Literal["done", "rejected"] | None = None
    events: list[OutcomeEvent] = Field(
        default_factory=list, description="The public events its handling published (`command.rejected` when refused)."
    )


class InvitationsFailed(Contract):
    """The people whose latest invitation failed and who still wait for one (`invited` or
    `transfer_pending`), oldest failure first: of an account, or of every account. Page with
    `after`."""

    account_id: AccountId | None = Field(default=None, description="Omitted: every account.")
    after: UUID | None = Field(default=None, description="The `next_after` of the previous page.")
    limit: int = Field(default=100, ge=1, le=1000)


class FailedInvitation(Contract):
    invitation_id: UUID
    account_id: str
    user_id: UUID
    email: StoredEmail
    kind: InvitationKind
    reason: str
    failed_at: datetime


class InvitationsFailedReply(Contract):
    invitations: list[FailedInvitation]
    next_after: UUID | None = Field(default=None, description="Pass as `after` for the next page; null on the last page.")


PeekStatus = Literal["open", "used", "revoked", "expired", "unknown"]


class InvitationsPeek(Contract):
    """What an invitation link stands for, for the page behind it: never consumes the token,
    however often it is asked."""

    token: str = Field(min_length=1, max_length=256, description="The `token` from the link.")


class AssetCounts(Contract):
    session_history: int = 0
    scheduled_sessions: int = 0
    upcoming_recordings: int = 0


class InvitationsPeekReply(Contract):
    status: PeekStatus = Field(
        description="`open`: it can be accepted (and a transfer declined); `used`: accepted or declined (see `response`); "
        "`revoked`: withdrawn (the person was removed, or a newer invitation replaced it); `expired`; `unknown`: no such "
        "token. Only `unknown` comes without the fields below."
    )
    kind: InvitationKind | None = None
    account_name: str | None = Field(default=None, description="The account that invites.")
    language: str | None = Field(default=None, description="The person's language in that account: the page's language.")
    email: StoredEmail | None = Field(default=None, description="The invited person: the login hint of the sign-in.")
    first_name: str | None = Field(default=None, max_length=NAME_MAX)
    expires_at: datetime | None = None
    response: Literal["accepted", "declined"] | None = Field(default=None, description="With `used`: how it was answered.")
    member_status: MembershipStatus | None = Field(
        default=None, description="The person's membership of the inviting account now (`active` once in)."
    )
    from_account_name: str | None = Field(default=None, description="A transfer: the account the person is active in now.")
    moves: AssetCounts | None = Field(
        default=None,
        description="A transfer: what accepting moves from that account (open), or what it moved (used and accepted).",
    )
