"""Queries on `userprov.commands`, answered to the message's `reply_to` with its `correlation_id`."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field, StringConstraints, ValidationInfo, field_validator

from contracts.base import (
    NAME_MAX,
    AccountId,
    AccountStatus,
    Contract,
    InvitationKind,
    MembershipStatus,
    RequestedBy,
    Role,
    TokenHash,
)
from contracts.commands import ScimDefaults
from contracts.email import EmailAddress, StoredEmail


class UsersGet(Contract):
    """One member of an account, by email address."""

    account_id: AccountId
    email: EmailAddress


class InvitationView(Contract):
    """A member's latest invitation."""

    kind: InvitationKind = Field(description="`welcome` or `transfer`.")
    status: str = Field(description="issued, sending, sent, accepted, declined, revoked, failed or expired.")
    expires_at: datetime | None = Field(description="When the invitation's link stops working.")
    sent_count: int = Field(description="Emails this member's invitations have had, this one included.")


class UsersGetReply(Contract):
    """The answer to `users.get`."""

    found: bool = Field(description="Whether it exists; when false, the other fields are empty.")
    user_id: UUID | None = Field(default=None, description="The person's profile id; null when not found.")
    email: StoredEmail | None = Field(default=None, description="The person's email address, as stored (normalised).")
    first_name: str | None = Field(default=None, max_length=NAME_MAX, description="The first name.")
    last_name: str | None = Field(default=None, max_length=NAME_MAX, description="The last name.")
    status: MembershipStatus | None = Field(
        default=None, description="The membership status (pending, invited, transfer_pending, active, suspended, deactivated; removed).",
    )
    role: Role | None = Field(default=None, description="`admin`, `manager`, or null for a plain user.")
    products: list[str] = Field(default_factory=list, description="The products they hold a seat of.")
    language: str | None = Field(
        default=None, description="Their language (en, fr, de, es, it, pt, nl or ja): their emails' and the invitation page's.",
    )
    group: str | None = Field(default=None, description="Their group in the account, or null.")
    settings_template: str | None = Field(default=None, description="Their settings template in the account, or null.")
    external_id: str | None = Field(default=None, description="As given in `users.add`.")
    invitation: InvitationView | None = Field(default=None, description="Their latest invitation, or null.")


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
    """One member, as `users.list` lists them."""

    user_id: UUID = Field(description="The person's profile id: the same in every account.")
    email: StoredEmail = Field(description="The person's email address, as stored (normalised).")
    first_name: str = Field(max_length=NAME_MAX, description="The first name.")
    last_name: str = Field(max_length=NAME_MAX, description="The last name.")
    status: MembershipStatus = Field(
        description="The membership status (pending, invited, transfer_pending, active, suspended, deactivated; removed).",
    )
    role: Role | None = Field(description="`admin`, `manager`, or null for a plain user.")
    products: list[str] = Field(description="Products whose seat they hold (none while deactivated).")
    language: str = Field(
        description="Their language (en, fr, de, es, it, pt, nl or ja): their emails' and the invitation page's.",
    )
    group: str | None = Field(description="Their group in the account, or null.")
    settings_template: str | None = Field(description="Their settings template in the account, or null.")
    external_id: str | None = Field(description="The identity provider's id for them, or null.")
    added_at: datetime = Field(description="When they became a member.")
    status_changed_at: datetime = Field(description="When their status last changed.")


class UsersListReply(Contract):
    """One page of an account's members."""

    account_id: str = Field(description="The account.")
    total: int = Field(description="Members matching the query, on every page.")
    start_index: int = Field(description="The 1-based position of this page's first member.")
    users: list[UserListed] = Field(description="This page's members, oldest membership first.")


class ScimTokensResolve(Contract):
    """Which account a SCIM bearer token acts on: asked with the token's SHA-256 hash."""

    token_hash: TokenHash = Field(description="The SHA-256 of the bearer token, lower-case hex.")


class ScimTokensResolveReply(Contract):
    """Which account a SCIM token acts on."""

    found: bool = Field(description="False for a token never added, or revoked.")
    account_id: str | None = Field(default=None, description="The account the token acts on; null when not found.")
    token_id: UUID | None = Field(default=None, description="The token's id; null when not found.")


class AccountsGet(Contract):
    """An account: its name, status, licences and members."""

    account_id: AccountId


class LicenceUse(Contract):
    """Seats of one product."""

    total: int = Field(description="Seats of the product the account holds.")
    used: int = Field(description="Seats taken by members.")


class AccountsGetReply(Contract):
    """The answer to `accounts.get`."""

    found: bool = Field(description="Whether it exists; when false, the other fields are empty.")
    account_id: str = Field(description="The account.")
    name: str | None = Field(default=None, description="The account's name.")
    status: AccountStatus | None = Field(default=None, description="`active`, or `expired` (members kept, no one added).")
    licences: dict[str, LicenceUse] = Field(
        default_factory=dict, description="Seats per product: how many it holds and how many are used.",
    )
    members: dict[str, int] = Field(default_factory=dict, description="Members per membership status.")
    scim: ScimDefaults | None = Field(default=None, description="What people added through SCIM get, when set.")
    invitation_quota_per_day: int | None = Field(
        default=None, description="At most this many invitations in any rolling 24 hours; null: no quota.",
    )
    invitations_left: int | None = Field(
        default=None,
        description="Invitations the quota still allows now (it less those of the last 24 hours, including those not"
        " sent yet); null: no quota.",
    )


class CommandsGet(Contract):
    """What became of a command: for a caller that lost its publisher confirm, or its event."""

    command_id: str = Field(min_length=1, max_length=255, description="The command's `message_id`.")
    include_events: bool = Field(
        default=True,
        description="false: the answer leaves `events` empty, for a caller that polls a large `users.add`'s `progress`"
        " (its `users.add.completed` holds a result per row) and asks for the events once, when it is done.",
    )


class OutcomeEvent(Contract):
    """One public event that a command's handling published."""

    type: str = Field(description="The event's name (its routing key), e.g. `users.add.completed`.")
    body: dict[str, Any] = Field(description="The event as it was published; its schema is the one of `type`.")


class AddProgress(Contract):
    """How far a `users.add` has come. Every count only grows, from when the command's outcome is
    recorded (`users.add.completed`) until each accepted row's invitation was emailed or failed."""

    rows: int = Field(ge=0, description="Rows of the command: its structured rows and pasted entries.")
    created: int = Field(ge=0, description="Rows that became a new member (outcome `accepted`).")
    invited: int = Field(
        ge=0, description="New members whose invitation was decided (welcome or transfer) and is waiting for its email, or past it.",
    )
    emailed: int = Field(ge=0, description="New members whom an invitation email reached (the SMTP server accepted it).")
    failed: int = Field(
        ge=0,
        description="Rows refused (outcome `rejected`), plus new members an invitation of whom failed (`invitation.failed`)."
        " A member whose invitation failed and who was later emailed after a resend counts in both `failed` and `emailed`.",
    )
    done: bool = Field(
        default=False,
        description="true: every new member was emailed, their invitation failed, or they left the account (removed, or"
        " deactivated: added so, or before an email reached them), so no email of this command is coming."
        " It turns false again if such a member is brought back.",
    )


class CommandsGetReply(Contract):
    """What became of a command."""

    found: bool = Field(description="False when no command with that id was handled (yet), or it was forgotten.")
    command_id: str = Field(description="The command asked about (its `message_id`).")
    command_type: str | None = Field(default=None, description="The command's routing key.")
    outcome: Literal["done", "rejected"] | None = Field(default=None, description="`done` or `rejected`; null when not found.")
    events: list[OutcomeEvent] = Field(
        default_factory=list, description="The public events its handling published (`command.rejected` when refused)."
    )
    progress: AddProgress | None = Field(
        default=None,
        description="A `users.add` that was done (not a dry run): how far its rows came, as of now; null for other commands.",
    )


class InvitationsFailed(Contract):
    """The people whose latest invitation failed and who still wait for one (`invited` or
    `transfer_pending`), oldest failure first: of an account, or of every account. Page with
    `after`."""

    account_id: AccountId | None = Field(default=None, description="Omitted: every account.")
    after: UUID | None = Field(default=None, description="The `next_after` of the previous page.")
    limit: int = Field(default=100, ge=1, le=1000, description="At most this many people.")


class FailedInvitation(Contract):
    """One person whose latest invitation failed."""

    invitation_id: UUID = Field(description="The invitation.")
    account_id: str = Field(description="The account.")
    user_id: UUID = Field(description="The person's profile id: the same in every account.")
    email: StoredEmail = Field(description="The person's email address, as stored (normalised).")
    kind: InvitationKind = Field(description="`welcome` or `transfer`.")
    reason: str = Field(description="Why: the SMTP server's answer, or that temporary failures lasted the whole retry window.")
    failed_at: datetime = Field(description="When the invitation failed.")


class InvitationsFailedReply(Contract):
    """The answer to `invitations.failed`."""

    invitations: list[FailedInvitation] = Field(description="The people whose latest invitation failed, oldest failure first.")
    next_after: UUID | None = Field(default=None, description="Pass as `after` for the next page; null on the last page.")


PeekStatus = Literal["open", "used", "revoked", "expired", "unknown"]


class InvitationsPeek(Contract):
    """What an invitation link stands for, for the page behind it: never consumes the token,
    however often it is asked."""

    token: str = Field(min_length=1, max_length=256, description="The `token` from the link.")


class AssetCounts(Contract):
    """What a transfer moves (or moved), as counts."""

    session_history: int = Field(default=0, description="Past sessions.")
    scheduled_sessions: int = Field(default=0, description="Scheduled sessions.")
    upcoming_recordings: int = Field(default=0, description="Upcoming recordings.")


class InvitationsPeekReply(Contract):
    """What a link stands for, told without using it."""

    status: PeekStatus = Field(
        description="`open`: it can be accepted (and a transfer declined); `used`: accepted or declined (see `response`); "
        "`revoked`: withdrawn (the person was removed, or a newer invitation replaced it); `expired`; `unknown`: no such "
        "token. Only `unknown` comes without the fields below."
    )
    kind: InvitationKind | None = Field(default=None, description="`welcome` or `transfer`; null for an unknown link.")
    account_name: str | None = Field(default=None, description="The account that invites.")
    language: str | None = Field(default=None, description="The person's language in that account: the page's language.")
    email: StoredEmail | None = Field(default=None, description="The invited person: the login hint of the sign-in.")
    first_name: str | None = Field(
        default=None, max_length=NAME_MAX, description="The person's first name, to greet them; null for an unknown link.",
    )
    expires_at: datetime | None = Field(default=None, description="When the link stops working; null for an unknown link.")
    response: Literal["accepted", "declined"] | None = Field(default=None, description="With `used`: how it was answered.")
    member_status: MembershipStatus | None = Field(
        default=None, description="The person's membership of the inviting account now (`active` once in)."
    )
    from_account_name: str | None = Field(default=None, description="A transfer: the account the person is active in now.")
    moves: AssetCounts | None = Field(
        default=None,
        description="A transfer: what accepting moves from that account (open), or what it moved (used and accepted).",
    )


AUDIT_LIST_MAX = 500
AuditActorKind = Literal["user", "service", "scim_token", "invitee", "operator", "system"]
AuditVia = Literal["bus", "scim", "links", "cli", "system"]
AuditOrder = Literal["newest_first", "oldest_first"]
AuditAction = Literal[
    "user.added", "user.updated", "user.removed", "user.deactivated", "user.reactivated", "user.activated",
    "user.transferred", "user.suspended", "invitation.sent", "invitation.failed", "invitation.resent", "invitation.revoked",
    "invitation.expired", "invitation.response_rejected", "account.upserted", "scim_token.added", "scim_token.revoked",
    "command.rejected",
]
"""Every action an audit entry can name (userprov.audit.writing refuses any other)."""
HashHex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class AuditList(Contract):
    """An account's audit trail, a page at a time: newest first unless `order` says otherwise. Read
    by an admin of the account (`requested_by`) or a trusted platform service; page with `cursor`."""

    account_id: AccountId
    requested_by: RequestedBy
    since: AwareDatetime | None = Field(default=None, description="Only entries at or after this time (with its time zone).")
    until: AwareDatetime | None = Field(default=None, description="Only entries before this time (with its time zone).")
    user_id: UUID | None = Field(default=None, description="Only entries about this person (their profile id).")
    email: EmailAddress | None = Field(default=None, description="Only entries about this email address.")
    actions: list[AuditAction] | None = Field(default=None, min_length=1, max_length=50,
                                                  description="Only entries of these actions, e.g. `user.added`.")
    order: AuditOrder = Field(default="newest_first", description="`newest_first` (the default) or `oldest_first`, by `seq`.")
    cursor: str | None = Field(default=None, min_length=1, max_length=200,
                               description="The `next_cursor` of the previous page, asked with the same filters and order.")
    limit: int = Field(default=100, ge=1, le=AUDIT_LIST_MAX, description=f"At most this many entries (at most {AUDIT_LIST_MAX}).")

    @field_validator("until")
    @classmethod
    def _after_since(cls, until: datetime | None, info: ValidationInfo) -> datetime | None:
        since = info.data.get("since")
        if until is not None and since is not None and since > until:
            raise ValueError("must not be before `since`")
        return until


class AuditActor(Contract):
    """Who made a change."""

    kind: AuditActorKind = Field(description="`user` (the command's requested_by), `service` (a trusted publisher's RabbitMQ"
                                 " user), `scim_token`, `invitee` (through their link), `operator` (the CLI's RabbitMQ user)"
                                 " or `system` (userprov itself).")
    id: str | None = Field(description="The user's email, the RabbitMQ user, the SCIM token's id; null for `system`.")


class AuditTarget(Contract):
    """Whom a change was about."""

    user_id: UUID | None = Field(description="The person's profile id; null when the change was about no one person.")
    email: StoredEmail | None = Field(description="Their email address, as stored (normalised).")


class AuditEntry(Contract):
    """One entry of an account's audit trail."""

    seq: int = Field(description="The entry's number in its account: 1, 2, 3, ... without gaps.")
    at: datetime = Field(description="When the change was committed.")
    action: str = Field(description="What happened: the public event's name (`user.removed`, `invitation.sent`, ...), or"
                        " `user.added` for an accepted row.")
    actor: AuditActor = Field(description="Who did it.")
    target: AuditTarget = Field(description="Whom it was about.")
    changes: dict[str, Any] = Field(description="What changed (a field's before and after, moved counts, ...).")
    via: AuditVia = Field(description="The door: `bus`, `scim`, `links`, `cli`, or `system`.")
    message_id: str | None = Field(description="The command's message_id.")
    correlation_id: str | None = Field(description="The command's correlation_id.")
    hash: HashHex = Field(description="SHA-256 of the previous entry's hash and of this entry's canonical form, lower-case hex.")


class ChainPoint(Contract):
    """A place in an account's hash chain."""

    seq: int = Field(description="The entry's number (0: before the first entry).")
    hash: HashHex = Field(description="The entry's hash, lower-case hex (64 zeros for seq 0).")


class AuditListReply(Contract):
    """One page of an account's audit trail."""

    account_id: str = Field(description="The account.")
    entries: list[AuditEntry] = Field(description="This page's entries, in the order asked.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    checkpoint: ChainPoint = Field(description="Where the chain starts: the last entry removed by retention (seq 0 when none"
                                   " was); a verifier re-computes the chain from it.")
    head: ChainPoint = Field(description="The account's last entry as the chain records it, when the page was read: a verifier"
                             " finds deleted newest entries with it.")
