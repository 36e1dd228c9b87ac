"""Events on the `userprov.events` exchange: those userprov publishes and those it consumes."""
from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field, model_validator

from contracts.base import AccountId, AssetKind, Contract, FieldError, InvitationKind, RowError
from contracts.email import EmailAddress, StoredEmail
from contracts.queries import AddProgress

RejectionReason = Literal[
    "malformed_json", "schema_invalid", "invalid_properties", "missing_message_id", "missing_reply_to", "unknown_type",
    "processing_failed", "unknown_account", "account_expired", "unknown_user", "forbidden", "last_admin", "not_resendable",
    "resend_cooldown", "unknown_group", "unknown_settings_template", "unknown_product", "unsupported_language", "no_users",
    "too_many_rows", "name_required", "seats_in_use", "invalid_template", "already_deactivated", "not_deactivated", "no_free_seat",
    "invalid_values", "unknown_scim_token", "scim_token_exists", "invalid_cursor", "invitation_quota_exceeded",
]
TemplateFallback = Literal["timeout", "memory", "too_large", "unsafe", "error", "link_missing", "syntax", "crashed", "too_slow"]

# -- in: from link handlers and product services


class InvitationAccepted(Contract):
    """A person accepted an invitation, sent by a link handler with the token of their link."""

    token: str = Field(min_length=1, max_length=256, description="The `token` from the link.")


class InvitationDeclined(Contract):
    """A person declined a transfer invitation, sent by a link handler with the token of their link."""

    token: str = Field(min_length=1, max_length=256, description="The `token` from the decline link.")


class AssetRecorded(Contract):
    """A product reports an asset of a person in an account (a past session, a scheduled session, an
    upcoming recording): it moves with them on a transfer."""

    account_id: AccountId
    email: EmailAddress
    kind: AssetKind = Field(description="What kind of asset: `session_history`, `scheduled_session` or `upcoming_recording`.")
    ref: str = Field(min_length=1, max_length=200, description="The product's reference of the asset.")


# -- out


class RowResult(Contract):
    """What became of one row of a `users.add`."""

    row: int = Field(ge=1, description="1-based, structured rows first, then pasted entries in order.")
    email: StoredEmail = Field(description="The email as stored (normalised), or as given when invalid: made printable and cut to 128 characters.")
    outcome: Literal["accepted", "already_member", "rejected"] = Field(
        description="`accepted` (a new member), `already_member` (nothing sent) or `rejected` (see `errors`).",
    )
    user_id: UUID | None = Field(
        default=None,
        description="The person's profile id; null for a rejected row, and in a dry run for someone with no profile yet.")
    errors: list[RowError] = Field(default_factory=list, description="Why the row was rejected (empty otherwise).")
    invitation: InvitationKind | None = Field(
        default=None,
        description="An accepted row: the invitation it gets (would get, in a dry run) as things stand when it is added:"
        " `transfer` for someone active in another account, else `welcome` (should that change before the invitation is"
        " decided, moments later, `invitation.sent` tells the kind sent). Null for a member added deactivated (invited"
        " when reactivated) and for the other outcomes.",
    )


class SeatFigure(Contract):
    """Seats of one product, as a dry run found them."""

    product: str = Field(description="The product.")
    needed: int = Field(description="Seats the command's rows would take (its valid new members, added active).")
    free: int = Field(description="Seats of the product free in the account now; rows past them get `no_free_seat`.")


class UsersAddCompleted(Contract):
    """Once per `users.add`, with one result per row."""

    command_id: str = Field(description="The `message_id` of the `users.add` command.")
    account_id: str = Field(description="The account of the `users.add`.")
    results: list[RowResult] = Field(description="One result per row, in row order.")
    dry_run: bool = Field(
        default=False, description="true: the answer of a dry run; nothing was created, reserved or emailed.",
    )
    seats: list[SeatFigure] | None = Field(
        default=None, description="A dry run: per product of the command, the seats needed and free; null otherwise.",
    )
    invitations_left: int | None = Field(
        default=None,
        description="A dry run in an account with an invitation quota: the invitations left in the rolling 24 hours"
        " before this command; null otherwise.",
    )


class UsersAddProgress(Contract):
    """How far a large `users.add` (more than 10 rows) has come, while its invitations are emailed:
    at most once a second per command, published as its emails are recorded; the last one when
    every new member was emailed or failed has `done: true`, and none follows it. The same counts
    as `commands.get` answers."""

    command_id: str = Field(description="The `message_id` of the `users.add` command.")
    account_id: str = Field(description="The account of the `users.add`.")
    progress: AddProgress = Field(description="The counts, as of the email outcomes recorded just before.")
    done: bool = Field(description="true: every new member of the command was emailed or their invitation failed; the last event.")
    published_at: datetime = Field(
        description="When it was published, on the database's clock (its counts were read just before): the events of one"
        " command are at least a second apart.",
    )


class InvitationSent(Contract):
    """The SMTP server accepted an invitation email."""

    invitation_id: UUID = Field(description="The invitation.")
    account_id: str = Field(description="The account.")
    user_id: UUID = Field(description="The person's profile id: the same in every account.")
    email: StoredEmail = Field(description="The person's email address, as stored (normalised).")
    kind: InvitationKind = Field(description="`welcome` or `transfer`.")
    expires_at: datetime = Field(description="When the invitation's link stops working.")
    sent_count: int = Field(description="Emails this member's invitations have had, this one included.")
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
    """An invitation email could not be delivered (a 5xx, or temporary failures for the whole retry
    window); the person stays invited."""

    invitation_id: UUID = Field(description="The invitation.")
    account_id: str = Field(description="The account.")
    user_id: UUID = Field(description="The person's profile id: the same in every account.")
    email: StoredEmail = Field(description="The person's email address, as stored (normalised).")
    reason: str = Field(description="Why: the SMTP server's answer, or that temporary failures lasted the whole retry window.")


class InvitationsRetried(Contract):
    """An `invitations.retry_failed` was applied."""

    command_id: str = Field(description="The `message_id` of the `invitations.retry_failed` command.")
    account_id: str | None = Field(description="The account, or null for every account.")
    retried: int = Field(description="Failed invitations issued again; each is mailed and announced by its own "
                         "`invitation.sent` or `invitation.failed`.")


ResponseRefusal = Literal["unknown_token", "expired", "already_used", "revoked", "not_declinable", "last_admin"]


class InvitationResponseRejected(Contract):
    """An accept or decline could not be applied; it names the invitation, the account and the person when
    the token is known."""

    reason: ResponseRefusal = Field(
        description="`last_admin`: accepting would leave the account the person is an admin of without an active admin; "
        "the invitation stays open."
    )
    invitation_id: UUID | None = Field(default=None, description="The token's invitation; null for `unknown_token`.")
    account_id: str | None = Field(default=None, description="The account that invited; null for `unknown_token`.")
    user_id: UUID | None = Field(default=None, description="The invited person; null for `unknown_token`.")


class UserActivated(Contract):
    """A welcome invitation was accepted by someone active in no other account."""

    account_id: str = Field(description="The account.")
    user_id: UUID = Field(description="The person's profile id: the same in every account.")
    email: StoredEmail = Field(description="The person's email address, as stored (normalised).")


class MovedAssets(Contract):
    """What a transfer moved, per kind of asset."""

    session_history: int = Field(default=0, description="Past sessions.")
    scheduled_sessions: int = Field(default=0, description="Scheduled sessions.")
    upcoming_recordings: int = Field(default=0, description="Upcoming recordings.")


class UserTransferred(Contract):
    """A transfer invitation was accepted (or a welcome, by someone active in another account by then): the
    person left that account, with their assets."""

    user_id: UUID = Field(description="The person's profile id: the same in every account.")
    email: StoredEmail = Field(description="The person's email address, as stored (normalised).")
    from_account_id: str | None = Field(
        description="The account they left; null when they had left it meanwhile (nothing moved).",
    )
    to_account_id: str = Field(description="The account they joined.")
    moved: MovedAssets = Field(description="What moved with them, as counts.")


class UserSuspended(Contract):
    """A transfer invitation was declined: the person stays active where they were, and the member keeps
    its seats."""

    account_id: str = Field(description="The account.")
    user_id: UUID = Field(description="The person's profile id: the same in every account.")
    email: StoredEmail = Field(description="The person's email address, as stored (normalised).")


class UserRemoved(Contract):
    """A member was removed: their seats released, their open invitations revoked."""

    account_id: str = Field(description="The account.")
    user_id: UUID = Field(description="The person's profile id: the same in every account.")
    email: StoredEmail = Field(description="The person's email address, as stored (normalised).")
    released: dict[str, int] = Field(description="Seats released, per product.")


class UserDeactivated(Contract):
    """A member was deactivated: their seats released, their open invitations revoked."""

    account_id: str = Field(description="The account.")
    user_id: UUID = Field(description="The person's profile id: the same in every account.")
    email: StoredEmail = Field(description="The person's email address, as stored (normalised).")
    released: dict[str, int] = Field(description="Seats released, per product.")


class UserReactivated(Contract):
    """A deactivated member came back: active again, or pending (an invitation follows), with the seats
    taken."""

    account_id: str = Field(description="The account.")
    user_id: UUID = Field(description="The person's profile id: the same in every account.")
    email: StoredEmail = Field(description="The person's email address, as stored (normalised).")
    status: Literal["active", "pending"] = Field(
        description="`active`: they had accepted, and use the account again. `pending`: they are invited anew (welcome, or"
                    " transfer if they are active in another account now); `invitation.sent` follows.")
    seats: dict[str, int] = Field(description="Seats taken again, per product.")


class UserUpdated(Contract):
    """A member's names or external id were updated."""

    account_id: str = Field(description="The account.")
    user_id: UUID = Field(description="The person's profile id: the same in every account.")
    email: StoredEmail = Field(description="The person's email address, as stored (normalised).")
    changed: dict[str, str | None] = Field(description="Each field whose value changed, with its new value (empty: nothing did).")


class ScimTokenAdded(Contract):
    """A SCIM bearer token was added to an account (ids only, never the token or its hash)."""

    account_id: str = Field(description="The account.")
    token_id: UUID = Field(description="The token's id, which `userprov scim token revoke` takes: never the token.")


class ScimTokenRevoked(Contract):
    """A SCIM bearer token was revoked."""

    account_id: str = Field(description="The account.")
    token_id: UUID = Field(description="The token's id, which `userprov scim token revoke` takes: never the token.")


class AccountUpserted(Contract):
    """An `accounts.upsert` was applied."""

    account_id: str = Field(description="The account.")


class AssetCounted(Contract):
    """An `asset.recorded` was counted: the asset moves with its owner on a transfer."""

    account_id: str = Field(description="The account.")
    user_id: UUID = Field(description="The person's profile id: the same in every account.")
    email: StoredEmail = Field(description="The person's email address, as stored (normalised).")
    kind: AssetKind = Field(description="What kind of asset: `session_history`, `scheduled_session` or `upcoming_recording`.")
    ref: str = Field(description="The product's reference of the asset.")
    new: bool = Field(description="False when the same account, kind and ref was recorded before (it is counted once).")


class CommandRejected(Contract):
    """A whole message was refused: its reason, and the fields at fault."""

    command_id: str | None = Field(description="The refused message's `message_id`, when it had one.")
    type: str | None = Field(description="The refused message's routing key.")
    reason: RejectionReason = Field(description="A stable code (the documentation's error codes).")
    message: str = Field(description="A human-readable explanation.")
    errors: list[FieldError] = Field(
        default_factory=list, description="The fields at fault, where it can name them (at most 50).",
    )


# -- between userprov's own services


class MembershipsCreated(Contract):
    """user-creation -> account-lookup: memberships waiting for the welcome/transfer decision."""

    account_id: str = Field(description="The account.")
    membership_ids: list[UUID] = Field(description="The memberships waiting for their decision.")


class IssuedInvitation(Contract):
    """One invitation of a chunk."""

    invitation_id: UUID = Field(description="The invitation.")
    kind: InvitationKind = Field(description="`welcome` or `transfer`.")


class InvitationIssued(Contract):
    """account-lookup -> invitation-mailing: invitations to mint a token for and email, as a
    chunk (one per `memberships.created`, one for a resend), mailed together."""

    invitations: list[IssuedInvitation] = Field(min_length=1, max_length=1000, description="The invitations to mail, together.")

    @model_validator(mode="before")
    @classmethod
    def _one_invitation_form(cls, data: object) -> object:
        """Versions before chunks sent one invitation per message as `{invitation_id, kind}`;
        such messages may still wait in the queue during an upgrade."""
        if isinstance(data, dict) and "invitations" not in data and "invitation_id" in data:
            return {"invitations": [{"invitation_id": data.get("invitation_id"), "kind": data.get("kind")}]}
        return data
