from __future__ import annotations

from contracts import routing
from contracts.events import MembershipsCreated
from contracts.queries import AccountsGet, UsersGet
from services.account_lookup import handlers
from services.runtime.dispatch import Route
from services.settings import Settings


def routes(settings: Settings) -> dict[str, Route]:
    return {
        routing.MEMBERSHIPS_CREATED: Route(MembershipsCreated, handlers.decide_invitations),
        routing.USERS_GET: Route(UsersGet, handlers.get_user),
        routing.ACCOUNTS_GET: Route(AccountsGet, handlers.get_account),
    }
