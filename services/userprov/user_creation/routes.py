"""What the user-creation service handles, by routing key."""
from __future__ import annotations

from functools import partial

from contracts import routing
from userprov.runtime.scheduling import Service
from userprov.sandbox.pool import TemplateSandbox
from userprov.settings import Settings
from userprov.user_creation import handlers
from userprov.user_creation.handlers import DecideHere
from userprov.user_creation.plan import is_large


def service(settings: Settings, decide_here: DecideHere | None = None) -> Service:
    """`decide_here`: account-lookup's decision of small work, when this process runs it too."""
    sandbox = TemplateSandbox(settings.sandbox_limits())
    return Service(handlers={
        # an upsert tries all its templates within three times one template's bound
        routing.ACCOUNTS_UPSERT: partial(handlers.upsert_account, sandbox=sandbox, render_budget=3 * settings.template_timeout_seconds),
        routing.USERS_ADD: partial(handlers.add_users, lookup_chunk_size=settings.lookup_chunk_size, decide_here=decide_here),
        routing.USERS_REMOVE: handlers.remove_user,
        routing.USERS_DEACTIVATE: handlers.deactivate_user,
        routing.USERS_REACTIVATE: handlers.reactivate_user,
        routing.USERS_UPDATE: handlers.update_user,
        routing.SCIM_TOKENS_ADD: handlers.add_scim_token,
        routing.SCIM_TOKENS_REVOKE: handlers.revoke_scim_token,
    }, large={routing.USERS_ADD: is_large})
