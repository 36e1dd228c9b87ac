"""What the account-lookup service handles, by routing key, and its scheduler."""
from __future__ import annotations

from functools import partial

from contracts import routing
from userprov.account_lookup import audit_trail, handlers
from userprov.account_lookup.decisions import DecideHere, Decisions, LocalMailing
from userprov.runtime.dispatch import Signal
from userprov.runtime.scheduling import BatchScheduler, Service
from userprov.settings import Settings


def service(settings: Settings, mailing: LocalMailing | None = None) -> Service:
    """`mailing`: the invitation-mailing scheduler, when this process runs it too."""
    return service_and_decisions(settings, mailing)[0]


def service_and_decisions(settings: Settings, mailing: LocalMailing | None = None) -> tuple[Service, DecideHere]:
    """The service, and its decision of small work for a user-creation in the same process."""
    deciding = Decisions(settings.resend_cooldown_seconds, mailing)
    decisions = BatchScheduler(
        "account-lookup", deciding, settings.lookup_batch_size, settings.scheduler_poll_seconds, settings.transient_backoff_max_seconds,
        takes_batches=settings.lane.takes_batches,
    )
    return Service(
        handlers={
            routing.MEMBERSHIPS_CREATED: Signal(decisions.notify),
            routing.USERS_GET: handlers.get_user,
            routing.USERS_LIST: handlers.list_users,
            routing.SCIM_TOKENS_RESOLVE: handlers.resolve_scim_token,
            routing.ACCOUNTS_GET: handlers.get_account,
            routing.COMMANDS_GET: handlers.get_command,
            routing.INVITATIONS_RESEND: partial(handlers.resend_invitation, cooldown_seconds=settings.resend_cooldown_seconds),
            routing.INVITATIONS_RETRY_FAILED: handlers.retry_failed_invitations,
            routing.INVITATIONS_FAILED: handlers.list_failed_invitations,
            routing.INVITATIONS_PEEK: handlers.peek_invitation,
            routing.ASSET_RECORDED: handlers.record_asset,
            routing.AUDIT_LIST: audit_trail.list_audit,
        },
        schedulers=[decisions],
    ), DecideHere(deciding)
