from __future__ import annotations

from functools import partial

from contracts import routing
from contracts.commands import AccountsUpsert, UsersAdd, UsersRemove
from userprov.runtime.dispatch import Route
from userprov.sandbox.pool import TemplateSandbox
from userprov.settings import Settings
from userprov.user_creation import handlers


def routes(settings: Settings) -> dict[str, Route]:
    return {
        routing.ACCOUNTS_UPSERT: Route(AccountsUpsert, partial(handlers.upsert_account, sandbox=TemplateSandbox(settings.sandbox_limits()))),
        routing.USERS_ADD: Route(UsersAdd, partial(handlers.add_users, lookup_chunk_size=settings.lookup_chunk_size)),
        routing.USERS_REMOVE: Route(UsersRemove, handlers.remove_user),
    }
