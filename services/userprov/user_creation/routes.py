"""What the user-creation service handles, by routing key."""
from __future__ import annotations

from functools import partial

from contracts import routing
from userprov.runtime.scheduling import Service
from userprov.sandbox.pool import TemplateSandbox
from userprov.settings import Settings
from userprov.user_creation import handlers


def service(settings: Settings) -> Service:
    sandbox = TemplateSandbox(settings.sandbox_limits())
    return Service(handlers={
        # an upsert tries all its templates within three times one template's bound
        routing.ACCOUNTS_UPSERT: partial(handlers.upsert_account, sandbox=sandbox, render_budget=3 * settings.template_timeout_seconds),
        routing.USERS_ADD: partial(handlers.add_users, lookup_chunk_size=settings.lookup_chunk_size),
        routing.USERS_REMOVE: handlers.remove_user,
    })
