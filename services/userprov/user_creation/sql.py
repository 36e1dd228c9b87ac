"""The SQL of the user-creation service."""
from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from contracts.commands import AccountsUpsert, ScimDefaults, UsersAdd
from userprov import lifecycle, seats
from userprov.memberships import ACCOUNT_COLUMNS, Account, home_account_sql
from userprov.runtime.errors import TransientError
from userprov.runtime.origin import Origin
from userprov.turns import turns_cte
from userprov.user_creation.plan import Known
from userprov.user_creation.validation import ValidRow


async def seats_in_use(conn: asyncpg.Connection, account_id: str) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT product, seats_used FROM account_licences WHERE account_id = $1 FOR UPDATE", account_id
    )
    return {r["product"]: r["seats_used"] for r in rows}


async def scim_defaults_and_products(conn: asyncpg.Connection, account_id: str) -> tuple[ScimDefaults | None, list[str]]:
    """The account's SCIM defaults and the products it holds licences for (the caller holds its lock)."""
    row = await conn.fetchrow(
        "SELECT scim_defaults::text AS scim, ARRAY(SELECT product FROM account_licences l WHERE l.account_id = a.account_id)"
        " AS products FROM accounts a WHERE account_id = $1",
        account_id,
    )
    if row is None:
        return None, []
    return (ScimDefaults.model_validate_json(row["scim"]) if row["scim"] else None), list(row["products"])


async def upsert_account(conn: asyncpg.Connection, cmd: AccountsUpsert, *, exists: bool) -> None:
    """Creates the account (`cmd.name` is set then), or replaces the fields the command gives
    and keeps the others."""
    groups = sorted(set(cmd.groups)) if cmd.groups is not None else None
    settings_templates = sorted(set(cmd.settings_templates)) if cmd.settings_templates is not None else None
    scim = cmd.scim.model_dump_json() if cmd.scim is not None else None
    sets_quota = "invitation_quota_per_day" in cmd.model_fields_set  # null removes it: COALESCE cannot tell
    if exists:
        await conn.execute(
            "UPDATE accounts SET name = COALESCE($2, name), status = COALESCE($3, status), groups = COALESCE($4, groups),"
            " settings_templates = COALESCE($5, settings_templates), scim_defaults = COALESCE($6::jsonb, scim_defaults),"
            " invitation_quota_per_day = CASE WHEN $7 THEN $8::int ELSE invitation_quota_per_day END,"
            " updated_at = now() WHERE account_id = $1",
            cmd.account_id, cmd.name, cmd.status, groups, settings_templates, scim, sets_quota, cmd.invitation_quota_per_day,
        )
    else:
        await conn.execute(
            "INSERT INTO accounts (account_id, name, status, groups, settings_templates, scim_defaults, invitation_quota_per_day)"
            " VALUES ($1, $2, COALESCE($3, 'active'), COALESCE($4, '{}'::text[]), COALESCE($5, '{}'::text[]), $6::jsonb, $7)",
            cmd.account_id, cmd.name, cmd.status, groups, settings_templates, scim, cmd.invitation_quota_per_day,
        )
    if cmd.licences is not None:
        products = sorted(cmd.licences)
        await conn.execute(
            "DELETE FROM account_licences WHERE account_id = $1 AND NOT (product = ANY($2::text[]))", cmd.account_id, products
        )
        await conn.execute(
            "INSERT INTO account_licences (account_id, product, seats_total)"
            " SELECT $1, * FROM unnest($2::text[], $3::int[])"
            " ON CONFLICT (account_id, product) DO UPDATE SET seats_total = EXCLUDED.seats_total",
            cmd.account_id,
            products,
            [cmd.licences[p] for p in products],
        )
    if cmd.welcome_templates is not None:
        await conn.execute("DELETE FROM welcome_templates WHERE account_id = $1", cmd.account_id)
        languages = sorted(cmd.welcome_templates)
        await conn.execute(
            "INSERT INTO welcome_templates (account_id, language, subject, body)"
            " SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[])",
            cmd.account_id,
            languages,
            [cmd.welcome_templates[lang].subject for lang in languages],
            [cmd.welcome_templates[lang].body for lang in languages],
        )


# One round trip for what adding users reads, in the lock order of every change to an account's
# members or seats: the account, then its licences (the select list is evaluated in order).
# Members are found from the emails, each checked by its (account, profile) key: a subquery in
# WHERE is never turned into a join, so no plan, the generic one of small adds included, reads
# every member of the account (that grew a one-person add by 2.5 ms per 1,000 members).
LOCK_FOR_ADDING = f"""
WITH account AS (
    SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_id = $1 FOR NO KEY UPDATE
), licences AS (
    SELECT product, seats_total - seats_used AS free FROM account_licences
    WHERE account_id = $1 AND product = ANY($2::text[]) AND EXISTS (SELECT FROM account) ORDER BY product FOR UPDATE
), members AS (
    SELECT p.email, p.profile_id FROM profiles p
    WHERE p.email = ANY($3::text[])
      AND (SELECT true FROM memberships m WHERE m.account_id = $1 AND m.profile_id = p.profile_id AND m.status <> 'removed')
)
SELECT (SELECT row_to_json(account) FROM account) AS account,
       (SELECT COALESCE(json_object_agg(product, free), '{{}}') FROM licences) AS free,
       (SELECT COALESCE(json_object_agg(email, profile_id), '{{}}') FROM members) AS members
"""


@dataclass(frozen=True)
class Adding:
    account: Account
    free: dict[str, int]  # free seats of each requested product the account holds
    members: dict[str, UUID]  # the emails already members (any status but removed), with their user id


async def lock_for_adding(conn: asyncpg.Connection, account_id: str, products: Sequence[str], emails: Sequence[str]) -> Adding | None:
    """The account and its requested licences, locked, and which of the emails are members
    already; None when there is no such account."""
    row = await conn.fetchrow(LOCK_FOR_ADDING, account_id, list(products), list(emails))
    if row["account"] is None:
        return None
    return Adding(
        Account(**json.loads(row["account"])),
        json.loads(row["free"]),
        {email: UUID(profile_id) for email, profile_id in json.loads(row["members"]).items()},
    )


async def known_people(conn: asyncpg.Connection, account_id: str, emails: Sequence[str]) -> dict[str, Known]:
    """Of the emails, those with a profile, each with the account they are active in other than
    this one: what the welcome-or-transfer decision would read now (a dry run's answer)."""
    rows = await conn.fetch(
        f"SELECT p.email, p.profile_id, {home_account_sql('p.profile_id', '$1')} AS home FROM profiles p WHERE p.email = ANY($2::text[])",
        account_id, list(emails))
    return {r["email"]: Known(r["profile_id"], r["home"]) for r in rows}


# The profiles that are missing, the memberships and their seats, in one statement (the seats'
# foreign keys are checked at its end). A profile that a concurrent transaction created after this
# statement began is not seen: its row is left out, and the caller tries again.
MEMBERSHIPS = f"""
WITH new AS (
    SELECT * FROM unnest($7::uuid[], $8::text[], $9::text[], $10::text[], $15::uuid[], $16::text[], $17::text[], $18::text[])
             WITH ORDINALITY AS t(membership_id, email, first_name, last_name, new_profile_id, external_id, status,
                                  deactivated_from, n),
         (VALUES ($1::text)) AS a(account_id)
), created_profiles AS (
    INSERT INTO profiles (profile_id, email, first_name, last_name) SELECT new_profile_id, email, first_name, last_name FROM new
    ON CONFLICT (email) DO NOTHING RETURNING email, profile_id
), profile AS (
    SELECT email, profile_id, NULL::text AS home FROM created_profiles  -- a new person is active nowhere
    UNION ALL
    SELECT p.email, p.profile_id, {home_account_sql("p.profile_id", "$1")} FROM profiles p JOIN new USING (email)
), {turns_cte("memberships", "new")},
created AS (
    INSERT INTO memberships (membership_id, account_id, profile_id, first_name, last_name, role, language, user_group,
                             settings_template, status, added_by_command, turn, correlation_id, traceparent, tracestate,
                             external_id, deactivated_from, deactivated_products)
    SELECT new.membership_id, new.account_id, profile.profile_id, new.first_name, new.last_name, $2, $3, $4, $5, new.status, $6,
           turns.start + new.n, $11, $12, $13, new.external_id, new.deactivated_from,
           CASE WHEN new.deactivated_from IS NOT NULL THEN $14::text[] END
    FROM new JOIN profile USING (email) JOIN turns USING (account_id)
    RETURNING membership_id, deactivated_from
), {seats.assign_cte("$1", "(SELECT array_agg(membership_id) FROM created WHERE deactivated_from IS NULL)", "$14::text[]")}
SELECT email, profile_id, home FROM profile
"""


async def create_memberships(
    conn: asyncpg.Connection, cmd: UsersAdd, rows: Sequence[ValidRow], command_id: str, origin: Origin
) -> tuple[dict[str, Known], list[UUID]]:
    """Creates missing profiles, a `pending` membership per row (waiting for account lookup, in
    the account's turn: userprov.turns) and its seats, or a `deactivated` one without seats for
    a row added inactive (lifecycle.added_status); returns each person by email (with the account
    they are active in, if any: what their invitation's decision reads) and the ids of the new
    pending memberships. Raises TransientError when a concurrent command created one of the
    people at the same moment (the handler runs again, and then sees them)."""
    ordered = sorted(rows, key=lambda r: r.email)  # one lock order for concurrent commands
    emails = [r.email for r in ordered]
    membership_ids = [uuid.uuid4() for _ in ordered]
    statuses = [lifecycle.added_status(r.active) for r in ordered]
    found = await conn.fetch(
        MEMBERSHIPS,
        cmd.account_id,
        cmd.role,
        cmd.language,
        cmd.group,
        cmd.settings_template,
        command_id,
        membership_ids,
        emails,
        [r.first_name for r in ordered],
        [r.last_name for r in ordered],
        origin.correlation_id,
        origin.traceparent,
        origin.tracestate,
        sorted(set(cmd.products)),
        [uuid.uuid4() for _ in ordered],
        [r.external_id for r in ordered],
        statuses,
        [None if status == lifecycle.PENDING else lifecycle.ADDED_INACTIVE_FROM for status in statuses],
    )
    people = {r["email"]: Known(r["profile_id"], r["home"]) for r in found}
    if len(people) < len(emails):
        raise TransientError("a person was added by another command at the same moment")
    return people, [m for m, status in zip(membership_ids, statuses, strict=True) if status == lifecycle.PENDING]


async def update_member(conn: asyncpg.Connection, membership_id: UUID, values: dict[str, str | None]) -> dict[str, tuple[str | None, str | None]]:
    """Sets the given names, external id or language of a locked membership; returns those that
    changed, each with its value before and after."""
    current = await conn.fetchrow("SELECT first_name, last_name, external_id, language FROM memberships WHERE membership_id = $1",
                                  membership_id)
    changed = {field: (current[field], value) for field, value in values.items() if current[field] != value}
    if changed:
        # the column names come from a fixed set (checked_changes', and language), never from the message
        assignments = ", ".join(f"{field} = ${n}" for n, field in enumerate(changed, start=2))
        await conn.execute(f"UPDATE memberships SET {assignments} WHERE membership_id = $1", membership_id,
                           *(after for _, after in changed.values()))
    return changed


async def add_scim_token(conn: asyncpg.Connection, token_id: UUID, account_id: str, token_hash: bytes) -> bool:
    """False when the token id or hash is taken already (by this token or another)."""
    added = await conn.fetchval("INSERT INTO scim_tokens (token_id, account_id, token_hash) VALUES ($1, $2, $3)"
                                " ON CONFLICT DO NOTHING RETURNING true", token_id, account_id, token_hash)
    return bool(added)


async def revoke_scim_token(conn: asyncpg.Connection, token_id: UUID) -> str | None:
    """The token's account (None: no such token); revoking it again changes nothing."""
    return await conn.fetchval(
        "UPDATE scim_tokens SET revoked_at = COALESCE(revoked_at, now()) WHERE token_id = $1 RETURNING account_id", token_id)
