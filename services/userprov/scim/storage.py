"""SCIM's resources read and written through userprov's public interface: each operation is a
query (`users.list`, `accounts.get`) or a command whose event it waits for, in the account of
the request's bearer token (`tenancy.current_account`). No table, no SQL, no lifecycle here:
the workers apply the same rules as for every other front door."""
from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from scim2_models import (
    InvalidValueException,
    Meta,
    MutabilityException,
    NotFoundException,
    ResourceType,
    ResponseParameters,
    SCIMException,
    SearchRequest,
    UniquenessException,
)
from scim2_server.storage import AsyncScimStorage, SearchPage

from contracts import routing
from contracts.base import Contract
from contracts.commands import NewUser, ScimDefaults, UsersAdd, UsersRemove, UsersUpdate
from contracts.events import CommandRejected, UsersAddCompleted
from contracts.queries import USERS_LIST_MAX, AccountsGet, AccountsGetReply, UserListed, UsersList, UsersListReply
from userprov.public_bus import NoAnswer, PublicBus, Received
from userprov.scim.filters import NoMatch, wanted
from userprov.scim.language import language_of
from userprov.scim.resources import Email, Name, ScimUser, User
from userprov.scim.tenancy import current_account

log = structlog.get_logger()

# the events that answer the commands SCIM sends; it waits for the one with its command's id
OUTCOME_EVENTS = (routing.USERS_ADD_COMPLETED, routing.USER_UPDATED, routing.USER_REMOVED, routing.COMMAND_REJECTED)
DEFAULTS_SECONDS = 5.0  # an account's SCIM defaults are asked again after this long


class Unavailable(SCIMException):
    """userprov did not answer in time: the client retries (503 with Retry-After)."""

    status = 503
    _default_detail = "userprov did not answer in time; retry later."


class UserprovStorage(AsyncScimStorage):
    def __init__(self, bus: PublicBus, wait_seconds: float) -> None:
        self._bus = bus
        self._wait = wait_seconds
        self._defaults: dict[str, tuple[float, ScimDefaults]] = {}

    async def get(self, resource_type: ResourceType, resource_id: str, *,
                  response_parameters: ResponseParameters[Any] | None = None) -> User:
        return resource_of(await self._member(resource_id))

    async def search(self, resource_types: list[ResourceType], search_request: SearchRequest[Any], *,
                     position: Any = None) -> SearchPage:
        try:
            asked = wanted(search_request.filter.ast if search_request.filter is not None else None)
            query = UsersList(account_id=current_account(), email=asked.email, external_id=asked.external_id,
                              user_id=uuid.UUID(asked.user_id) if asked.user_id else None, active=asked.active, start_index=search_request.start_index or 1,
                              count=USERS_LIST_MAX if search_request.count is None else min(search_request.count, USERS_LIST_MAX))
        except (NoMatch, ValueError):  # two values of one field, or a value no member can have (not an address, not an id)
            return SearchPage(0, [])
        found = await self._list(query)
        return SearchPage(found.total, [resource_of(u) for u in found.users])

    async def create(self, resource_type: ResourceType, resource: Any) -> User:
        """One `users.add`: the person is created active, or deactivated without a seat or an
        invitation when `active` is false. The attributes userprov does not keep are dropped."""
        account_id = current_account()
        defaults = await self._scim_defaults(account_id)
        if resource.user_name is None or resource.name is None:
            raise InvalidValueException(detail="userName and name (givenName, familyName) are required.")
        row = NewUser(first_name=resource.name.given_name or "", last_name=resource.name.family_name or "",
                      email=resource.user_name, external_id=resource.external_id, active=resource.active is not False)
        language = language_of(resource.preferred_language, resource.locale) or defaults.language
        command = UsersAdd(account_id=account_id, requested_by=None, users=[row], products=defaults.products, role=defaults.role,
                           language=language, group=defaults.group, settings_template=defaults.settings_template)
        answer = await self._command(routing.USERS_ADD, command)
        result = UsersAddCompleted.model_validate_json(answer.body).results[0]
        if result.outcome == "already_member":
            raise UniquenessException(detail=f"userName {resource.user_name!r} is taken in this account.")
        if result.outcome == "rejected" or result.user_id is None:
            raise InvalidValueException(detail="; ".join(f"{_attribute(e.field)}: {e.code}: {e.message}" for e in result.errors))
        return resource_of(await self._member(str(result.user_id)))

    async def update(self, resource_type: ResourceType, resource: Any, *, expected_version: str | None = None) -> User:
        """What changed (names, externalId, language, active) in one `users.update`: all of it
        is applied, or none. An attribute left out keeps its value."""
        current = await self._member(str(resource.id))
        if resource.user_name is not None and resource.user_name.casefold() != current.email.casefold():
            raise MutabilityException(detail="userName is the person's email address in userprov: it cannot change.")
        given = resource.name.given_name if resource.name else None
        family = resource.name.family_name if resource.name else None
        language = language_of(resource.preferred_language, resource.locale)
        deactivated = current.status == "deactivated"
        changes: dict[str, Any] = {}
        if given is not None and given != current.first_name:
            changes["first_name"] = given
        if family is not None and family != current.last_name:
            changes["last_name"] = family
        # a PUT that leaves externalId out keeps it (Okta's does, after setting it on creation); null or a remove clears it
        if "external_id" in resource.model_fields_set and resource.external_id != current.external_id:
            changes["external_id"] = resource.external_id
        if language is not None and language != current.language:
            changes["language"] = language
        if resource.active is not None and resource.active == deactivated:
            changes["active"] = resource.active
        if changes:
            await self._command(routing.USERS_UPDATE, UsersUpdate(account_id=current_account(), requested_by=None, email=current.email,
                                                                   **changes))
        return resource_of(await self._member(str(resource.id)))

    async def delete(self, resource_type: ResourceType, resource_id: str, *, expected_version: str | None = None) -> None:
        current = await self._member(resource_id)
        await self._command(routing.USERS_REMOVE, UsersRemove(account_id=current_account(), requested_by=None, email=current.email))

    async def _member(self, resource_id: str) -> UserListed:
        """The account's member with this id; 404 for anyone else, whichever account they are in."""
        try:
            query = UsersList(account_id=current_account(), user_id=uuid.UUID(resource_id), count=1)
        except ValueError:
            raise NotFoundException(detail=f"No User {resource_id[:64]!r}.") from None
        found = await self._list(query)
        if not found.users:
            raise NotFoundException(detail=f"No User {resource_id[:64]!r}.")
        return found.users[0]

    async def _list(self, query: UsersList) -> UsersListReply:
        answer = await self._ask(routing.USERS_LIST, query)
        return UsersListReply.model_validate_json(answer.body)

    async def _scim_defaults(self, account_id: str) -> ScimDefaults:
        cached = self._defaults.get(account_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        answer = await self._ask(routing.ACCOUNTS_GET, AccountsGet(account_id=account_id))
        defaults = AccountsGetReply.model_validate_json(answer.body).scim or ScimDefaults()
        self._defaults[account_id] = (time.monotonic() + DEFAULTS_SECONDS, defaults)
        return defaults

    async def _ask(self, routing_key: str, query: Contract) -> Received:
        try:
            answer = await self._bus.ask(routing_key, query, self._wait)
        except NoAnswer:
            raise Unavailable from None
        if answer.type == routing.COMMAND_REJECTED:  # a query the contracts allow is never refused: a fault of ours
            raise RuntimeError(f"{routing_key} was refused: {CommandRejected.model_validate_json(answer.body).message}")
        return answer

    async def _command(self, routing_key: str, command: Contract) -> Received:
        """The event that answered the command; a refusal as the SCIM error it means."""
        try:
            received = await self._bus.command(routing_key, command, self._wait)
        except NoAnswer:
            raise Unavailable from None
        if received.type == routing.COMMAND_REJECTED:
            rejected = CommandRejected.model_validate_json(received.body)
            if rejected.reason == "forbidden":  # an operator's mistake, not the client's: say so where operators look
                log.error("scim_publisher_not_trusted", consequence="add this service's RabbitMQ user to USERPROV_TRUSTED_PUBLISHERS")
            raise _refusal(rejected)
        return received


def _refusal(rejected: CommandRejected) -> SCIMException:
    detail = f"{rejected.reason}: {rejected.message}"
    if rejected.reason == "already_member":
        return UniquenessException(detail=detail)
    if rejected.reason == "unknown_user":  # removed meanwhile
        return NotFoundException(detail=detail)
    return InvalidValueException(detail=detail)


def _attribute(field: str) -> str:
    """A row error's field as the SCIM attribute it came from."""
    return {"email": "userName", "first_name": "name.givenName", "last_name": "name.familyName",
            "external_id": "externalId"}.get(field.rsplit(".", 1)[-1], field)


def resource_of(member: UserListed) -> User:
    return ScimUser(
        id=str(member.user_id),
        external_id=member.external_id,
        user_name=member.email,
        name=Name(given_name=member.first_name, family_name=member.last_name),
        active=member.status != "deactivated",
        emails=[Email(value=member.email, type="work", primary=True)],
        meta=Meta(resource_type="User", created=member.added_at, last_modified=max(member.added_at, member.status_changed_at)),
    )
