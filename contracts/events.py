"""Events on the `userprov.events` exchange: those userprov publishes and those it consumes."""
from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field, model_validator

from contracts.base import AccountId, AssetKind, Contract, FieldError, InvitationKind, RowError
from contracts.email import EmailAddress, StoredEmail

RejectionReason = Literal[
    "malformed_json", "schema_invalid", "invalid_properties", "missing_message_id", "missing_reply_to", "unknown_type",
    "processing_failed", "unknown_account", "account_expired", "unknown_user", "forbidden", "last_admin", "not_resendable",
    "resend_cooldown", "unknown_group", "unknown_settings_template", "unknown_product", "unsupported_language", "no_users",
    "too_many_rows", "name_required", "seats_in_use", "invalid_template", "already_deactivated", "not_deactivated", "no_free_seat",
    "invalid_values", "unknown_scim_token", "scim_token_exists",
]
TemplateFallback = Literal["timeout", "memory", "too_large", "unsafe", "error", "link_missing", "syntax", "crashed", "too_slow"]

# -- in: from link handlers and product services


class InvitationAccepted(Contract):
    token: str = Field(min_length=1, max_length=256, description="The `token` from the link.")


class InvitationDeclined(Contract):
    token: str = Field(min_length=1, max_length=256, description="The `token` from the decline link.")


class AssetRecorded(Contract):
    account_id: AccountId
    email: EmailAddress
    kind: AssetKind
    ref: str = Field(min_length=1, max_length=200, description="The product's reference of the asset.")


# -- out


class RowResult(Contract):
    row: int = Field(ge=1, description="1-based, structured rows first, then pasted entries in order.")
    email: StoredEmail = Field(description="The email as stored (normalised), or as given when invalid: made printable and cut to 128 characters.")
    outcome: Literal["accepted", "already_member", "rejected"]
    user_id: UUID | None = None
    errors: list[RowError] = Field(default_factory=list)


class UsersAddCompleted(Contract):
    command_id: str = Field(description="The `message_id` of the `users.add` command.")
    account_id: str
    results: list[RowResult]


class InvitationSent(Contract):
    invitation_id: UUID
    account_id: str
    user_id: UUID
    email: StoredEmail
    kind: InvitationKind
    expires_at: datetime
    sent_count: int
    template: Literal["account", "builtin"] = Field(
        default="builtin", description="Which template the email was made from."
    )
    template_fallback: TemplateFallback | None = Field(
        default=None,
        description="Why the account's own welcome template was not used although it has one for the language: "
        "`timeout` or `memory` (it exceeded the rendering bounds), `too_large` (its output), `unsafe` (it reached "
        "for internals), `error` (it failed), `link_missing` (it rendered without the link), `syntax`, `crashed`, "
        "`too_slow` (its renders kept taking more than half the time bound: it fell back for a while).",
    )


class InvitationFailed(Contract):
    invitation_id: UUID
    account_id: str
    user_id: UUID
    email: StoredEmail
    reason: str


class InvitationsRetried(Contract):
    command_id: str = Field(description="The `message_id` of the `invitations.retry_failed` command.")
    account_id: str | None = Field(description="The account, or null for every account.")
    retried: int = Field(description="Failed invitations issued again; each is mailed and announced by its own "
                         "`invitation.sent` or `invitation.failed`.")


ResponseRefusal = Literal["unknown_token", "expired", "already_used", "revoked", "not_declinable", "last_admin"]


class InvitationResponseRejected(Contract):
    reason: ResponseRefusal = Field(
        description="`last_admin`: accepting would leave the account the person is an admin of without an active admin; "
        "the invitation stays open."
    )
    invitation_id: UUID | None = Field(default=None, description="The token's invitation; null for `unknown_token`.")
    account_id: str | None = Field(default=None, description="The account that invited; null for `unknown_token`.")
    user_id: UUID | None = Field(default=None, description="The invited person; null for `unknown_token`.")


class UserActivated(Contract):
    account_id: str
    user_id: UUID
    email: StoredEmail


class MovedAssets(Contract):
    session_history: int = 0
    scheduled_sessions: int = 0
    upcoming_recordings: int = 0


class UserTransferred(Contract):
    user_id: UUID
    email: StoredEmail
    from_account_id: str | None
    to_account_id: str
    moved: MovedAssets


class UserSuspended(Contract):
    account_id: str
    user_id: UUID
    email: StoredEmail


class UserRemoved(Contract):
    account_id: str
    user_id: UUID
    email: StoredEmail
    released: dict[str, int]


class UserDeactivated(Contract):
    account_id: str
    user_id: UUID
    email: StoredEmail
    released: dict[str, int] = Field(description="Seats released, per product.")


class UserReactivated(Contract):
    account_id: str
    user_id: UUID
    email: StoredEmail
    status: Literal["active", "pending"] = Field(
        description="`active`: they had accepted, and use the account again. `pending`: they are invited anew (welcome, or"
                    " transfer if they are active in another account now); `invitation.sent` follows.")
    seats: dict[str, int] = Field(description="Seats taken again, per product.")


class UserUpdated(Contract):
    account_id: str
    user_id: UUID
    email: StoredEmail
    changed: dict[str, str | None] = Field(description="Each field whose value changed, with its new value (empty: nothing did).")


class ScimTokenAdded(Contract):
    account_id: str
    token_id: UUID


class ScimTokenRevoked(Contract):
    account_id: str
    token_id: UUID


class AccountUpserted(Contract):
    account_id: str


class AssetCounted(Contract):
    """An `asset.recorded` was counted: the asset moves with its owner on a transfer."""

    account_id: str
    user_id: UUID
    email: StoredEmail
    kind: AssetKind
    ref: str
    new: bool = Field(description="False when the same account, kind and ref was recorded before (it is counted once).")


class CommandRejected(Contract):
    command_id: str | None = Field(description="The refused message's `message_id`, when it had one.")
    type: str | None = Field(description="The refused message's routing key.")
    reason: RejectionReason = Field(description="A stable code, see the README.")
    message: str
    errors: list[FieldError] = Field(default_factory=list)


# -- between userprov's own services


class MembershipsCreated(Contract):
    """user-creation -> account-lookup: memberships waiting for the welcome/transfer decision."""

    account_id: str
    membership_ids: list[UUID]


class IssuedInvitation(Contract):
    invitation_id: UUID
    kind: InvitationKind


class InvitationIssued(Contract):
    """account-lookup -> invitation-mailing: invitations to mint a token for and email, as a
    chunk (one per `memberships.created`, one for a resend), mailed together."""

    invitations: list[IssuedInvitation] = Field(min_length=1, max_length=1000)

    @model_validator(mode="before")
    @classmethod
    def _one_invitation_form(cls, data: object) -> object:
        """Versions before chunks sent one invitation per message as `{invitation_id, kind}`;
        such messages may still wait in the queue during an upgrade."""
        if isinstance(data, dict) and "invitations" not in data and "invitation_id" in data:
            return {"invitations": [{"invitation_id": data.get("invitation_id"), "kind": data.get("kind")}]}
        return data
