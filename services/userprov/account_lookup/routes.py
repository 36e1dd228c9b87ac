from __future__ import annotations

from functools import partial

from contracts import routing
from contracts.commands import InvitationsResend
from contracts.events import AssetRecorded, MembershipsCreated
from contracts.queries import AccountsGet, UsersGet
from userprov.account_lookup import handlers
from userprov.runtime.dispatch import Route
from userprov.settings import Settings


def routes(settings: Settings) -> dict[str, Route]:
    return {
        routing.MEMBERSHIPS_CREATED: Route(MembershipsCreated, handlers.decide_invitations),
        routing.USERS_GET: Route(UsersGet, handlers.get_user),
        routing.ACCOUNTS_GET: Route(AccountsGet, handlers.get_account),
        routing.INVITATIONS_RESEND: Route(
            InvitationsResend, partial(handlers.resend_invitation, cooldown_seconds=settings.resend_cooldown_seconds)
        ),
        routing.ASSET_RECORDED: Route(AssetRecorded, handlers.record_asset),
    }
