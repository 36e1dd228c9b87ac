"""Commands sent to userprov on the `userprov.commands` exchange."""
from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar
from uuid import UUID

from pydantic import Field, StringConstraints, field_validator, model_validator
from pydantic_core import PydanticCustomError

from contracts.base import LANGUAGES, AccountId, AccountStatus, Contract, Product, RequestedBy, Role, TokenHash
from contracts.email import EmailAddress

PASTED_MAX = 2_000_000
TemplateName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class WelcomeTemplate(Contract):
    """An account's own welcome email for one language: sandboxed Jinja2 templates of its subject and body."""

    subject: str = Field(max_length=200, description="Subject line; a sandboxed Jinja2 template.")
    body: str = Field(
        max_length=20_000,
        description="Plain-text body; a sandboxed Jinja2 template. Variables: first_name, last_name, "
        "email, account_name, link, expires_at.",
    )


def _omit_rather_than_null(schema: dict[str, Any]) -> None:
    """In the JSON Schema, a field that may be omitted but not sent as null."""
    branches = [b for b in schema.pop("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1:
        schema.update(branches[0])
    schema.pop("default", None)


def _omit_rather_than_null_of(values: list[str]) -> Callable[[dict[str, Any]], None]:
    """`_omit_rather_than_null`, for a string that is one of `values`."""
    def schema_of(schema: dict[str, Any]) -> None:
        _omit_rather_than_null(schema)
        schema["enum"] = values
    return schema_of



class ScimDefaults(Contract):
    """What a person added through SCIM gets (an identity provider names none of it)."""

    products: list[Product] = Field(default_factory=list, max_length=64, description="Licences to assign.")
    role: Role | None = Field(default=None, description="Omitted for a plain user without privileges.")
    language: str = Field(default="en", description="Primary language code.", json_schema_extra={"enum": list(LANGUAGES)})
    group: TemplateName | None = Field(default=None, description="A user group of the account.")
    settings_template: TemplateName | None = Field(default=None, description="A settings template of the account.")


class AccountsUpsert(Contract):
    """Creates or updates an account (sent by billing and setup services).

    Each field given replaces that field whole; each field omitted keeps its value (a new
    account takes the default). An empty list or map says "none": `"groups": []` removes
    every group. `null` is refused (omit the field to keep it), but for `invitation_quota_per_day`,
    where it removes the quota."""

    account_id: AccountId
    name: str | None = Field(
        default=None, min_length=1, max_length=200, json_schema_extra=_omit_rather_than_null,
        description="The account's display name; required when the account is new.",
    )
    status: AccountStatus | None = Field(
        default=None, json_schema_extra=_omit_rather_than_null,
        description="`active` for a new account when omitted. `expired` accounts keep their members and take no new ones.",
    )
    licences: dict[Product, Annotated[int, Field(ge=0, le=1_000_000)]] | None = Field(
        default=None, json_schema_extra=_omit_rather_than_null,
        description="Seats per product, replacing the whole map: a product left out loses its licences. "
        "Lowering below the seats in use is refused. None for a new account when omitted.",
    )
    groups: list[TemplateName] | None = Field(
        default=None, json_schema_extra=_omit_rather_than_null, description="User groups that exist in the account (the whole list)."
    )
    settings_templates: list[TemplateName] | None = Field(
        default=None, json_schema_extra=_omit_rather_than_null,
        description="Settings templates that exist in the account (the whole list).",
    )
    welcome_templates: dict[str, WelcomeTemplate] | None = Field(
        default=None, max_length=len(LANGUAGES), json_schema_extra=_omit_rather_than_null,
        description="The account's own welcome email per supported language code (the whole map); another code is refused"
        " with `unsupported_language` before any template is tried.",
    )

    scim: ScimDefaults | None = Field(
        default=None, json_schema_extra=_omit_rather_than_null,
        description="What people added through SCIM get (the whole section); none: no products, no role, English.",
    )
    invitation_quota_per_day: int | None = Field(
        default=None, ge=0, le=1_000_000,
        description="At most this many invitations (welcome, transfer, resent, and those of reactivated members) in any"
        " rolling 24 hours; past it a row of `users.add` gets `invitation_quota_exceeded` and a resend is refused with that"
        " code. `null` removes the quota; omitted keeps it (a new account has none).",
    )

    # The fields for which `null` is a value (it removes), not a mistake.
    nullable: ClassVar[frozenset[str]] = frozenset({"account_id", "invitation_quota_per_day"})

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = [k for k, v in data.items() if v is None and k not in cls.nullable]
            if nulls:
                raise PydanticCustomError(
                    "null_field", "{fields}: omit a field to keep its value; null is not a value", {"fields": ", ".join(nulls)}
                )
        return data


class NewUser(Contract):
    """One person to add. Field rules are checked per row, so bad values give row errors, not a rejection."""

    checked_per_row: ClassVar[frozenset[str]] = frozenset({"first_name", "last_name", "email", "external_id"})

    first_name: str = Field(description="1 to 32 characters after trimming.", examples=["Żaneta"])
    last_name: str = Field(description="1 to 32 characters after trimming.", examples=["Kowalska"])
    email: str = Field(
        description="At most 128 characters (checked per row: a longer one is the row error `too_long`), valid syntax; "
        "compared in its normalised form."
    )
    external_id: str | None = Field(
        default=None,
        description="The person's id in the caller's own system (a SCIM `externalId`): at most 255 characters, kept as given"
        " and answered by `users.get` and `users.list`.")
    active: bool = Field(
        default=True,
        description="false: the person is added deactivated (an identity provider's `active: false`, such as a future hire):"
        " they take no seat, are not counted against the free seats and are not invited until `users.reactivate` (or"
        " `users.update` with `active: true`), which takes their seats and invites them. No `user.deactivated` is"
        " published for them.",
        examples=[True])


class UsersAdd(Contract):
    """Adds one or many users to one account."""

    checked_per_row: ClassVar[frozenset[str]] = frozenset({"pasted"})

    account_id: AccountId
    requested_by: RequestedBy
    users: list[NewUser] = Field(default_factory=list, max_length=10_000, description="Structured rows, numbered first.")
    pasted: str | None = Field(
        default=None,
        # checked below, not by pydantic's constraint: that one refuses the whole string (and so
        # the command) for one lone surrogate, which must be a row error instead
        json_schema_extra={"maxLength": PASTED_MAX},
        description="Pasted list: entries separated by `;` or line breaks, each `first last... email`, "
        "or three tab-separated fields.",
        examples=["Ada Lovelace ada@example.com; Alan Mathison Turing alan@example.com"],
    )
    products: list[Product] = Field(default_factory=list, description="Licences to assign to every accepted row.")
    role: Role | None = Field(default=None, description="Omitted for a plain user without privileges.")
    language: str = Field(
        default="en",
        description="Primary language code; another value is refused with `unsupported_language`.",
        json_schema_extra={"enum": list(LANGUAGES)},
    )
    group: str | None = Field(default=None, description="A user group that exists in the account.")
    settings_template: str | None = Field(default=None, description="A settings template of the account.")
    dry_run: bool = Field(
        default=False,
        description="true: every row is checked against the account as it stands and answered by `users.add.completed`"
        " (with `dry_run: true`, the invitation each accepted row would get and the seats per product), but nothing is"
        " created, reserved or emailed. The same command without it, next, gives the same outcome per row.",
    )

    @field_validator("pasted")
    @classmethod
    def _pasted_bounded(cls, value: str | None) -> str | None:
        if value is not None and len(value) > PASTED_MAX:
            raise PydanticCustomError(
                "string_too_long", "String should have at most {max_length} characters", {"max_length": PASTED_MAX}
            )
        return value


class UsersRemove(Contract):
    """Removes a user from an account, releasing their seats and revoking their invitations."""

    account_id: AccountId
    email: EmailAddress
    requested_by: RequestedBy


class UsersDeactivate(Contract):
    """Takes the account away from a member without removing them (an identity provider's
    `active: false`): they cannot use it, their seats are released and their open invitations
    revoked. Answered by `user.deactivated`."""

    account_id: AccountId
    email: EmailAddress
    requested_by: RequestedBy


class UsersReactivate(Contract):
    """Brings a deactivated member back, with a seat of each product they held: active again if
    they had accepted (and are active in no other account), otherwise invited anew. Refused
    with `no_free_seat` when a product has no free seat. Answered by `user.reactivated`."""

    account_id: AccountId
    email: EmailAddress
    requested_by: RequestedBy


class UsersUpdate(Contract):
    """Changes a member's names, external id, language or status in the account, all or nothing
    (an identity provider's PUT or PATCH). An omitted field keeps its value; `external_id: null`
    clears it. Values are checked as a row of `users.add` is: a bad one refuses the command with
    `invalid_values`, naming the field and its row error code. `active` deactivates or
    reactivates as `users.deactivate` and `users.reactivate` do, refused for the same reasons
    (`last_admin`, `no_free_seat`), and then nothing changes. Answered by `user.updated` with
    what changed, with `user.deactivated` or `user.reactivated` when the status changed."""

    checked_per_row: ClassVar[frozenset[str]] = frozenset({"first_name", "last_name", "external_id"})

    account_id: AccountId
    email: EmailAddress
    requested_by: RequestedBy
    first_name: str | None = Field(default=None, json_schema_extra=_omit_rather_than_null, description="1 to 32 characters after trimming.")
    last_name: str | None = Field(default=None, json_schema_extra=_omit_rather_than_null, description="1 to 32 characters after trimming.")
    external_id: str | None = Field(default=None, description="At most 255 characters, kept as given; null clears it.")
    language: str | None = Field(
        default=None, json_schema_extra=_omit_rather_than_null_of(list(LANGUAGES)),
        description="Primary language code; another value is refused with `unsupported_language`.")
    active: bool | None = Field(
        default=None, json_schema_extra=_omit_rather_than_null,
        description="false: deactivated, if they are not (as by `users.deactivate`); true: back, if they are deactivated"
        " (as by `users.reactivate`). The same value as now changes nothing.")

    @model_validator(mode="before")
    @classmethod
    def _not_null(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = [k for k in ("first_name", "last_name", "language", "active") if k in data and data[k] is None]
            if nulls:
                raise PydanticCustomError("null_field", "{fields}: omit a field to keep its value; null is not a value",
                                          {"fields": ", ".join(nulls)})
        return data

    def changes(self) -> dict[str, str | None]:
        """The names and external id given, by name."""
        return {name: getattr(self, name) for name in ("first_name", "last_name", "external_id") if name in self.model_fields_set}


class ScimTokensAdd(Contract):
    """Lets an identity provider's SCIM client act on the account with the bearer token whose
    SHA-256 hash this is (`userprov scim token create` makes the token and sends only its
    hash). For trusted platform services only. Answered by `scim_token.added`."""

    account_id: AccountId
    token_id: UUID = Field(description="The token's id, which `userprov scim token revoke` takes: never the token.")
    token_hash: TokenHash = Field(description="The token's SHA-256, lower-case hex: userprov never sees the token itself.")


class ScimTokensRevoke(Contract):
    """The token stops working at once (a SCIM service may have resolved it a few seconds
    before). For trusted platform services only. Answered by `scim_token.revoked`."""

    token_id: UUID = Field(description="The token's id, which `userprov scim token revoke` takes: never the token.")


class InvitationsResend(Contract):
    """Sends a fresh invitation to an `invited`, `transfer_pending` or `suspended` user."""

    account_id: AccountId
    email: EmailAddress
    requested_by: RequestedBy


class InvitationsRetryFailed(Contract):
    """Sends a fresh invitation to everyone whose latest invitation failed (a permanent SMTP answer,
    or temporary ones for the whole retry window) and who still waits for one: in one account, or,
    for a platform service (no `requested_by`), in every account. Answered by
    `invitations.retried`."""

    account_id: AccountId | None = Field(default=None, description="Omitted: every account (a platform service only).")
    requested_by: RequestedBy
