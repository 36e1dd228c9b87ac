"""Handlers of the user-creation service: accounts.upsert, users.add, users.remove."""
from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from uuid import UUID

import asyncpg
import structlog

from contracts import routing
from contracts.base import FieldError
from contracts.commands import (
    AccountsUpsert,
    ScimTokensAdd,
    ScimTokensRevoke,
    UsersAdd,
    UsersDeactivate,
    UsersReactivate,
    UsersRemove,
    UsersUpdate,
)
from contracts.events import (
    AccountUpserted,
    MembershipsCreated,
    ScimTokenAdded,
    ScimTokenRevoked,
    SeatFigure,
    UserDeactivated,
    UserReactivated,
    UserRemoved,
    UsersAddCompleted,
    UserUpdated,
)
from contracts.text import printable
from userprov import invitation_quota, lifecycle
from userprov.languages import SUPPORTED_LANGUAGES
from userprov.memberships import Account, Membership, is_last_active_admin, lock_account, lock_current_membership
from userprov.permissions import acting, authorize, permit, platform
from userprov.runtime.aio import map_in_slices
from userprov.runtime.errors import Rejected
from userprov.runtime.origin import Origin
from userprov.runtime.priority import priority
from userprov.runtime.scheduling import EXPRESS_MAX
from userprov.runtime.unit_of_work import UnitOfWork
from userprov.sandbox.pool import TemplateSandbox
from userprov.sandbox.trial import AccountTemplate, trial_errors
from userprov.user_creation import scim_names, sql
from userprov.user_creation.plan import Known, Plan, TooManyRows, answered, candidates_of, plan_rows, seats_needed
from userprov.user_creation.scim_names import Names
from userprov.user_creation.validation import Candidate, ValidRow, checked_changes, reject_repeated_emails, validate_row


async def upsert_account(cmd: AccountsUpsert, uow: UnitOfWork, *, sandbox: TemplateSandbox, render_budget: float) -> None:
    """Each field given replaces that field; each omitted keeps its value (see AccountsUpsert).
    Accounts are the platform's to manage."""
    platform()
    if cmd.scim is not None and cmd.scim.language not in SUPPORTED_LANGUAGES:
        raise Rejected("unsupported_language", f"{printable(cmd.scim.language, 50)!r} is not one of {', '.join(SUPPORTED_LANGUAGES)}.",
                       [FieldError(field="scim.language", code="unsupported_language", message="Not a supported language.")])
    errors = await _template_errors(cmd, sandbox, render_budget)
    if errors:
        raise Rejected("invalid_template", "Some welcome templates cannot be used.", errors)
    async with uow:
        existing = await lock_account(uow.conn, cmd.account_id)
        if existing is None and cmd.name is None:
            raise Rejected("name_required", f"Account {cmd.account_id!r} is new: it needs a name.",
                           [FieldError(field="name", code="required", message="A new account needs a name.")])
        if cmd.licences is not None:
            await _refuse_below_seats_in_use(uow, cmd.account_id, cmd.licences)
        await _refuse_scim_defaults_naming_what_is_not_there(uow, cmd, existing)
        await sql.upsert_account(uow.conn, cmd, exists=existing is not None)
        uow.emit(AccountUpserted(account_id=cmd.account_id))
        uow.audit(routing.ACCOUNT_UPSERTED, cmd.account_id,
                  changes={"created": existing is None, **cmd.model_dump(mode="json", exclude_unset=True, exclude={"account_id"})})


async def _template_errors(cmd: AccountsUpsert, sandbox: TemplateSandbox, render_budget: float) -> list[FieldError]:
    """The languages first (no template is tried while one is not supported), then each template
    tried in the sandbox, all of them within `render_budget` seconds: a template left untried
    when it is spent is refused too, so an upsert never holds the renderers for long."""
    templates = cmd.welcome_templates or {}
    unsupported = [
        FieldError(field=f"welcome_templates.{printable(language, 50)}", code="unsupported_language",
                   message=f"{printable(language, 50)!r} is not supported.")
        for language in templates
        if language not in SUPPORTED_LANGUAGES
    ]
    if unsupported:
        return unsupported
    errors, deadline = [], asyncio.get_running_loop().time() + render_budget
    for language, template in sorted(templates.items()):
        if asyncio.get_running_loop().time() > deadline:
            errors.append(FieldError(field=f"welcome_templates.{language}", code="render_budget_exceeded",
                                     message=f"The templates of one upsert must render within {render_budget:g} s together;"
                                             " this one was not tried."))
            continue
        found = await trial_errors(sandbox, AccountTemplate(template.subject, template.body), cmd.name or cmd.account_id)
        errors += [FieldError(field=f"welcome_templates.{language}.{part}", code=code, message=printable(problem))
                   for part, (code, problem) in found.items()]
    return errors


async def _refuse_below_seats_in_use(uow: UnitOfWork, account_id: str, licences: dict[str, int]) -> None:
    in_use = await sql.seats_in_use(uow.conn, account_id)
    too_low = [
        FieldError(
            field=f"licences.{product}",
            code="below_seats_in_use",
            message=f"{used} seats of {product} are in use; cannot lower to {licences.get(product, 0)}.",
        )
        for product, used in sorted(in_use.items())
        if used > licences.get(product, 0)
    ]
    if too_low:
        raise Rejected("seats_in_use", "Licences cannot go below the seats in use.", too_low)


async def _refuse_scim_defaults_naming_what_is_not_there(uow: UnitOfWork, cmd: AccountsUpsert, existing: Account | None) -> None:
    """The account's SCIM defaults, given or kept, against its groups, settings templates and
    licences after the upsert (userprov.user_creation.scim_names); read only when the upsert
    changes one of them."""
    if cmd.scim is None and cmd.groups is None and cmd.settings_templates is None and cmd.licences is None:
        return
    kept, products = await sql.scim_defaults_and_products(uow.conn, cmd.account_id) if existing else (None, [])
    defaults = cmd.scim or kept
    if defaults is None:
        return
    before = Names(frozenset(existing.groups if existing else ()), frozenset(existing.settings_templates if existing else ()),
                   frozenset(products))
    after = Names(
        frozenset(cmd.groups) if cmd.groups is not None else before.groups,
        frozenset(cmd.settings_templates) if cmd.settings_templates is not None else before.settings_templates,
        frozenset(cmd.licences) if cmd.licences is not None else before.products,
    )
    refused = scim_names.refusal(defaults, cmd.scim is not None, before, after)
    if refused is not None:
        raise refused


USER_ADDED = "user.added"  # an accepted row's audit action (no event announces one row)

DecideHere = Callable[[UnitOfWork, Sequence[UUID]], Awaitable[bool]]  # account-lookup's decision, in this process


async def add_users(cmd: UsersAdd, uow: UnitOfWork, *, lookup_chunk_size: int, decide_here: DecideHere | None = None) -> None:
    """A command for a few people is interactive work: bulk work in this process holds for it
    (userprov.runtime.priority); a large one yields between slices of its validation."""
    try:
        candidates = candidates_of(cmd)
    except TooManyRows as error:
        raise Rejected("too_many_rows", str(error)) from error
    if not candidates:
        raise Rejected("no_users", "The command names no one to add.")
    with priority.interactive() if len(candidates) <= EXPRESS_MAX else nullcontext():
        await _add_users(cmd, uow, candidates, lookup_chunk_size, decide_here if len(candidates) <= EXPRESS_MAX else None)


async def _add_users(cmd: UsersAdd, uow: UnitOfWork, candidates: list[Candidate], lookup_chunk_size: int,
                     decide_here: DecideHere | None) -> None:
    if cmd.language not in SUPPORTED_LANGUAGES:
        raise Rejected("unsupported_language", f"{cmd.language!r} is not one of {', '.join(SUPPORTED_LANGUAGES)}.")
    await _may_add(cmd, uow)
    checked = reject_repeated_emails(await map_in_slices(validate_row, candidates, _between_slices))
    products = sorted(set(cmd.products))
    if len(candidates) <= EXPRESS_MAX:
        uow.plan_generically()
    async with uow:
        conn = uow.conn
        adding = await sql.lock_for_adding(conn, cmd.account_id, products, [r.email for r in checked if isinstance(r, ValidRow)])
        if adding is None:
            raise Rejected("unknown_account", f"No account {cmd.account_id!r}.")
        account, free = adding.account, adding.free
        if account.status == "expired":
            # an expired account keeps its members but takes no new ones: its billing ended
            raise Rejected("account_expired", f"Account {cmd.account_id!r} has expired: it takes no new users.")
        if cmd.group is not None and cmd.group not in account.groups:
            raise Rejected("unknown_group", f"The account has no user group {cmd.group!r}.")
        if cmd.settings_template is not None and cmd.settings_template not in account.settings_templates:
            raise Rejected("unknown_settings_template", f"The account has no settings template {cmd.settings_template!r}.")
        unknown = [p for p in products if p not in free]
        if unknown:
            raise Rejected("unknown_product", f"The account holds no licences for {', '.join(unknown)}.")
        # read after the lock's statement, so that it counts what the commands before this one reserved
        left = await invitation_quota.invitations_left(conn, cmd.account_id) if account.invitation_quota_per_day is not None else None
        plan = plan_rows(checked, adding.members, min(free.values()) if free else None, left)
        outcomes = Counter(r.outcome for r in plan.results)
        structlog.contextvars.bind_contextvars(  # on the message's log line
            account_id=cmd.account_id, accepted=outcomes["accepted"], already_members=outcomes["already_member"],
            rejected_rows=outcomes["rejected"], dry_run=cmd.dry_run)
        if cmd.dry_run:
            await _answer_dry_run(cmd, uow, plan, seats_needed(checked, adding.members), free, left)
            return
        people, membership_ids = await sql.create_memberships(conn, cmd, plan.accepted, uow.message_id, Origin.now(uow.correlation_id))
        uow.emit(UsersAddCompleted(command_id=uow.message_id, account_id=cmd.account_id, results=answered(plan, people)))
        _audit_added(uow, cmd, plan.accepted, people)
        if membership_ids and decide_here is not None and await decide_here(uow, membership_ids):
            return  # decided already: no signal for account-lookup
        for start in range(0, len(membership_ids), lookup_chunk_size):
            chunk = membership_ids[start : start + lookup_chunk_size]
            uow.emit(MembershipsCreated(account_id=cmd.account_id, membership_ids=chunk))


def _audit_added(uow: UnitOfWork, cmd: UsersAdd, rows: Sequence[ValidRow], people: dict[str, Known]) -> None:
    """One entry per accepted row, in row order, with what the command gave for it."""
    given = {"role": cmd.role, "products": sorted(set(cmd.products)), "language": cmd.language, "group": cmd.group,
             "settings_template": cmd.settings_template}
    for row in rows:
        person = people.get(row.email)
        uow.audit(USER_ADDED, cmd.account_id, person.profile_id if person else None, row.email, {
            **given, "first_name": row.first_name, "last_name": row.last_name, "external_id": row.external_id,
            "active": row.active, "row": row.row})


async def _answer_dry_run(cmd: UsersAdd, uow: UnitOfWork, plan: Plan, needed: int, free: dict[str, int], left: int | None) -> None:
    """The plan of a real add, answered and not carried out: nothing is written but the outcome
    (the inbox claim and commands.get's record, as for any command)."""
    known = await sql.known_people(uow.conn, cmd.account_id, [r.email for r in plan.accepted])
    uow.emit(UsersAddCompleted(
        command_id=uow.message_id, account_id=cmd.account_id, results=answered(plan, known), dry_run=True,
        seats=[SeatFigure(product=product, needed=needed, free=free[product]) for product in sorted(free)],
        invitations_left=left,
    ))


async def _may_add(cmd: UsersAdd, uow: UnitOfWork) -> None:
    """Refuses a requester who may not add these people before anything costly: the validation of
    up to 10,000 rows and the account's lock. A platform service is judged without a read; a named
    requester by their role, read once before the add's transaction, without the account's lock.
    That is safe: a membership's role never changes, and a change of the requester's status that
    commits in between (a removal, a deactivation, an acceptance) depends on nothing this add
    writes (its members are pending, never active admins; seat counts move by increments), so the
    outcome is that of the add handled a moment earlier, before that change."""
    if cmd.requested_by is None:
        platform()
        return
    async with uow.read_before() as conn:
        await authorize(conn, cmd.account_id, cmd.requested_by, cmd.role)


async def _lock_member(conn: asyncpg.Connection, cmd: UsersRemove | UsersDeactivate | UsersReactivate | UsersUpdate) -> Membership:
    """The account, then the member the command is about, both locked, once the actor may manage them."""
    if await lock_account(conn, cmd.account_id) is None:
        raise Rejected("unknown_account", f"No account {cmd.account_id!r}.")
    actor = await acting(conn, cmd.account_id, cmd.requested_by)
    membership = await lock_current_membership(conn, cmd.account_id, cmd.email)
    permit(actor, membership.role)
    return membership


async def remove_user(cmd: UsersRemove, uow: UnitOfWork) -> None:
    async with uow:
        conn = uow.conn
        membership = await _lock_member(conn, cmd)
        if await is_last_active_admin(conn, membership):
            raise Rejected("last_admin", "The last active admin of an account cannot be removed.")
        released = await lifecycle.end(conn, membership.membership_id)
        uow.audit(routing.USER_REMOVED, cmd.account_id, membership.profile_id, cmd.email,
                  {"status": [membership.status, "removed"], "role": membership.role, "released": released})
        uow.emit(
            UserRemoved(
                account_id=cmd.account_id,
                user_id=membership.profile_id,
                email=cmd.email,
                released=released,
            )
        )


async def deactivate_user(cmd: UsersDeactivate, uow: UnitOfWork) -> None:
    async with uow:
        membership = await _lock_member(uow.conn, cmd)
        if membership.status == lifecycle.DEACTIVATED:
            raise Rejected("already_deactivated", f"{cmd.email} is deactivated already.")
        await _deactivate(uow, membership, cmd.email)


async def reactivate_user(cmd: UsersReactivate, uow: UnitOfWork) -> None:
    async with uow:
        membership = await _lock_member(uow.conn, cmd)
        if membership.status != lifecycle.DEACTIVATED:
            raise Rejected("not_deactivated", f"{cmd.email} is not deactivated (status {membership.status}).")
        await _reactivate(uow, membership, cmd.email)


async def _deactivate(uow: UnitOfWork, membership: Membership, email: str) -> None:
    if await is_last_active_admin(uow.conn, membership):
        raise Rejected("last_admin", "The last active admin of an account cannot be deactivated.")
    released = await lifecycle.deactivate(uow.conn, membership.membership_id)
    uow.audit(routing.USER_DEACTIVATED, membership.account_id, membership.profile_id, email,
              {"status": [membership.status, lifecycle.DEACTIVATED], "released": released})
    uow.emit(UserDeactivated(account_id=membership.account_id, user_id=membership.profile_id, email=email, released=released))


async def _reactivate(uow: UnitOfWork, membership: Membership, email: str) -> None:
    try:
        back = await lifecycle.reactivate(uow.conn, membership.membership_id, membership.account_id, membership.profile_id)
    except lifecycle.NoFreeSeat as error:
        raise Rejected("no_free_seat", f"No free seat of {', '.join(error.products)} to bring {email} back.") from error
    if back.status == lifecycle.PENDING and await invitation_quota.exceeded(uow.conn, membership.account_id):
        raise Rejected(invitation_quota.EXCEEDED, f"The account's invitation quota for the rolling 24 hours is spent: {email} would be"
                       " invited anew; nothing changed.")
    uow.audit(routing.USER_REACTIVATED, membership.account_id, membership.profile_id, email,
              {"status": [membership.status, back.status], "seats": back.seats})
    uow.emit(UserReactivated(account_id=membership.account_id, user_id=membership.profile_id, email=email, status=back.status,
                             seats=back.seats))
    if back.status == lifecycle.PENDING:  # account-lookup decides and invites them anew
        uow.emit(MembershipsCreated(account_id=membership.account_id, membership_ids=[membership.membership_id]))


async def update_user(cmd: UsersUpdate, uow: UnitOfWork) -> None:
    """Every change of the command in one transaction: a refused status change (`last_admin`,
    `no_free_seat`) leaves the names and language unchanged too."""
    values, errors = checked_changes(cmd.changes())
    if errors:
        raise Rejected("invalid_values", "; ".join(e.message for e in errors),
                       [FieldError(field=e.field, code=e.code, message=e.message) for e in errors])
    if cmd.language is not None:
        if cmd.language not in SUPPORTED_LANGUAGES:
            raise Rejected("unsupported_language", f"{printable(cmd.language, 50)!r} is not one of {', '.join(SUPPORTED_LANGUAGES)}.",
                           [FieldError(field="language", code="unsupported_language", message="Not a supported language.")])
        values["language"] = cmd.language
    async with uow:
        conn = uow.conn
        membership = await _lock_member(conn, cmd)
        changed = await sql.update_member(conn, membership.membership_id, values)
        deactivated = membership.status == lifecycle.DEACTIVATED
        if cmd.active is False and not deactivated:
            await _deactivate(uow, membership, cmd.email)
        elif cmd.active is True and deactivated:
            await _reactivate(uow, membership, cmd.email)
        if changed:
            uow.audit(routing.USER_UPDATED, cmd.account_id, membership.profile_id, cmd.email,
                      {field: {"before": before, "after": after} for field, (before, after) in changed.items()})
        uow.emit(UserUpdated(account_id=cmd.account_id, user_id=membership.profile_id, email=cmd.email,
                             changed={field: after for field, (_, after) in changed.items()}))


async def add_scim_token(cmd: ScimTokensAdd, uow: UnitOfWork) -> None:
    platform()
    async with uow:
        if await lock_account(uow.conn, cmd.account_id) is None:
            raise Rejected("unknown_account", f"No account {cmd.account_id!r}.")
        if not await sql.add_scim_token(uow.conn, cmd.token_id, cmd.account_id, bytes.fromhex(cmd.token_hash)):
            raise Rejected("scim_token_exists", f"A SCIM token with id {cmd.token_id} or with this hash exists already.")
        uow.emit(ScimTokenAdded(account_id=cmd.account_id, token_id=cmd.token_id))
        uow.audit(routing.SCIM_TOKEN_ADDED, cmd.account_id, changes={"token_id": str(cmd.token_id)})


async def revoke_scim_token(cmd: ScimTokensRevoke, uow: UnitOfWork) -> None:
    platform()
    async with uow:
        account_id = await sql.revoke_scim_token(uow.conn, cmd.token_id)
        if account_id is None:
            raise Rejected("unknown_scim_token", f"No SCIM token {cmd.token_id}.")
        uow.emit(ScimTokenRevoked(account_id=account_id, token_id=cmd.token_id))
        uow.audit(routing.SCIM_TOKEN_REVOKED, account_id, changes={"token_id": str(cmd.token_id)})


async def _between_slices() -> None:
    await priority.bulk_step()
    await asyncio.sleep(0)
