"""What the account-lookup service handles, by routing key."""
from __future__ import annotations

from functools import partial

from contracts import routing
from userprov.account_lookup import handlers
from userprov.runtime.dispatch import Handler, QueryHandler
from userprov.settings import Settings


def handlers_for(settings: Settings) -> dict[str, Handler | QueryHandler]:
    return {
        routing.MEMBERSHIPS_CREATED: handlers.decide_invitations,
        routing.USERS_GET: handlers.get_user,
        routing.ACCOUNTS_GET: handlers.get_account,
        routing.COMMANDS_GET: handlers.get_command,
        routing.INVITATIONS_RESEND: partial(handlers.resend_invitation, cooldown_seconds=settings.resend_cooldown_seconds),
        routing.ASSET_RECORDED: handlers.record_asset,
    }
