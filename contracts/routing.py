"""Every exchange, routing key and queue name of userprov lives here and nowhere else."""
from __future__ import annotations

COMMANDS_EXCHANGE = "userprov.commands"
EVENTS_EXCHANGE = "userprov.events"
DEAD_LETTER_EXCHANGE = "userprov.dead-letter"
# the alternate exchange of userprov.commands: a command no queue is bound for (a mistyped
# routing key) goes there, and from there to user-creation, which refuses it as unknown_type
UNROUTED_COMMANDS_EXCHANGE = "userprov.commands.unrouted"
# userprov's own hand-offs between its services: declared by the workers, and only they
# should be granted write or read on it (see the RabbitMQ permissions in docs/reference/wire.md)
INTERNAL_EXCHANGE = "userprov.internal"
# accepts and declines, token included, from the link handlers: only they should be granted write
# on it and only the workers read (see the RabbitMQ permissions in docs/reference/wire.md), so that no integrator
# reading userprov.events sees a token. Their old path, userprov.events, still works (deprecated).
RESPONSES_EXCHANGE = "userprov.responses"

# headers a front door of userprov sets on what it publishes, for the audit trail: the door
# (scim, links, cli) and who acts through it (a SCIM token's id). The workers believe them only
# from a trusted publisher (USERPROV_TRUSTED_PUBLISHERS); see docs/reference/audit.md.
VIA_HEADER = "x-userprov-via"
ACTOR_HEADER = "x-userprov-actor"

# commands and queries (userprov.commands)
ACCOUNTS_UPSERT = "accounts.upsert"
USERS_ADD = "users.add"
USERS_REMOVE = "users.remove"
USERS_DEACTIVATE = "users.deactivate"
USERS_REACTIVATE = "users.reactivate"
USERS_UPDATE = "users.update"
SCIM_TOKENS_ADD = "scim_tokens.add"
SCIM_TOKENS_REVOKE = "scim_tokens.revoke"
SCIM_TOKENS_RESOLVE = "scim_tokens.resolve"
INVITATIONS_RESEND = "invitations.resend"
INVITATIONS_RETRY_FAILED = "invitations.retry_failed"
USERS_GET = "users.get"
USERS_LIST = "users.list"
ACCOUNTS_GET = "accounts.get"
COMMANDS_GET = "commands.get"
INVITATIONS_FAILED = "invitations.failed"
INVITATIONS_PEEK = "invitations.peek"
AUDIT_LIST = "audit.list"

# events from outside userprov (userprov.events)
INVITATION_ACCEPTED = "invitation.accepted"
INVITATION_DECLINED = "invitation.declined"
ASSET_RECORDED = "asset.recorded"

# events userprov publishes (userprov.events)
USERS_ADD_COMPLETED = "users.add.completed"
USERS_ADD_PROGRESS = "users.add.progress"
INVITATION_SENT = "invitation.sent"
INVITATION_FAILED = "invitation.failed"
INVITATIONS_RETRIED = "invitations.retried"
INVITATION_RESPONSE_REJECTED = "invitation.response_rejected"
USER_ACTIVATED = "user.activated"
USER_TRANSFERRED = "user.transferred"
USER_SUSPENDED = "user.suspended"
USER_REMOVED = "user.removed"
USER_DEACTIVATED = "user.deactivated"
USER_REACTIVATED = "user.reactivated"
USER_UPDATED = "user.updated"
SCIM_TOKEN_ADDED = "scim_token.added"
SCIM_TOKEN_REVOKED = "scim_token.revoked"
ACCOUNT_UPSERTED = "account.upserted"
ASSET_COUNTED = "asset.counted"
COMMAND_REJECTED = "command.rejected"

# events between userprov's own services (userprov.internal)
MEMBERSHIPS_CREATED = "memberships.created"
INVITATION_ISSUED = "invitation.issued"

USER_CREATION = "user-creation"
ACCOUNT_LOOKUP = "account-lookup"
INVITATION_MAILING = "invitation-mailing"
INVITATION_RESPONSE = "invitation-response"
SERVICES = (USER_CREATION, ACCOUNT_LOOKUP, INVITATION_MAILING, INVITATION_RESPONSE)

def queue_name(service: str) -> str:
    return f"userprov.{service}"


def parking_queue_name(service: str) -> str:
    return f"userprov.{service}.parked"


# Commands that are bulk work when large: a process in the interactive lane hands such a command
# to the bulk lane by publishing it on userprov.internal, to its service's bulk queue.
HANDED_TO_BULK = {USER_CREATION: (USERS_ADD,)}


def bulk_queue_name(service: str) -> str:
    return f"userprov.{service}.bulk"


def work_queue_names() -> tuple[str, ...]:
    """Every queue the workers consume: each service's, and the bulk queues."""
    return (*map(queue_name, SERVICES), *map(bulk_queue_name, HANDED_TO_BULK))


def replay_exchange(service: str, exchange: str, routing_key: str) -> str:
    """Where a message parked by `service` after coming from `exchange` is replayed: a command
    handed to the bulk lane goes back through the public door it came in by, where it is judged
    and handed off again (with the trust its replay says its original had)."""
    if exchange == INTERNAL_EXCHANGE and routing_key in HANDED_TO_BULK.get(service, ()):
        return COMMANDS_EXCHANGE
    return exchange
