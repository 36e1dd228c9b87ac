"""Which model each routing key carries, and on which exchange."""
from __future__ import annotations

from contracts import commands, events, queries, routing
from contracts.base import Contract

COMMAND_MODELS: dict[str, type[Contract]] = {
    routing.ACCOUNTS_UPSERT: commands.AccountsUpsert,
    routing.USERS_ADD: commands.UsersAdd,
    routing.USERS_REMOVE: commands.UsersRemove,
    routing.USERS_DEACTIVATE: commands.UsersDeactivate,
    routing.USERS_REACTIVATE: commands.UsersReactivate,
    routing.USERS_UPDATE: commands.UsersUpdate,
    routing.SCIM_TOKENS_ADD: commands.ScimTokensAdd,
    routing.SCIM_TOKENS_REVOKE: commands.ScimTokensRevoke,
    routing.SCIM_TOKENS_RESOLVE: queries.ScimTokensResolve,
    routing.INVITATIONS_RESEND: commands.InvitationsResend,
    routing.INVITATIONS_RETRY_FAILED: commands.InvitationsRetryFailed,
    routing.USERS_GET: queries.UsersGet,
    routing.USERS_LIST: queries.UsersList,
    routing.ACCOUNTS_GET: queries.AccountsGet,
    routing.COMMANDS_GET: queries.CommandsGet,
    routing.INVITATIONS_FAILED: queries.InvitationsFailed,
    routing.INVITATIONS_PEEK: queries.InvitationsPeek,
    routing.AUDIT_LIST: queries.AuditList,
}

EVENT_MODELS: dict[str, type[Contract]] = {
    routing.INVITATION_ACCEPTED: events.InvitationAccepted,
    routing.INVITATION_DECLINED: events.InvitationDeclined,
    routing.ASSET_RECORDED: events.AssetRecorded,
    routing.USERS_ADD_COMPLETED: events.UsersAddCompleted,
    routing.USERS_ADD_PROGRESS: events.UsersAddProgress,
    routing.INVITATION_SENT: events.InvitationSent,
    routing.INVITATION_FAILED: events.InvitationFailed,
    routing.INVITATIONS_RETRIED: events.InvitationsRetried,
    routing.INVITATION_RESPONSE_REJECTED: events.InvitationResponseRejected,
    routing.USER_ACTIVATED: events.UserActivated,
    routing.USER_TRANSFERRED: events.UserTransferred,
    routing.USER_SUSPENDED: events.UserSuspended,
    routing.USER_REMOVED: events.UserRemoved,
    routing.USER_DEACTIVATED: events.UserDeactivated,
    routing.USER_REACTIVATED: events.UserReactivated,
    routing.USER_UPDATED: events.UserUpdated,
    routing.SCIM_TOKEN_ADDED: events.ScimTokenAdded,
    routing.SCIM_TOKEN_REVOKED: events.ScimTokenRevoked,
    routing.ACCOUNT_UPSERTED: events.AccountUpserted,
    routing.ASSET_COUNTED: events.AssetCounted,
    routing.COMMAND_REJECTED: events.CommandRejected,
    routing.MEMBERSHIPS_CREATED: events.MembershipsCreated,
    routing.INVITATION_ISSUED: events.InvitationIssued,
}

REPLY_MODELS: dict[str, type[Contract]] = {
    routing.USERS_GET: queries.UsersGetReply,
    routing.USERS_LIST: queries.UsersListReply,
    routing.SCIM_TOKENS_RESOLVE: queries.ScimTokensResolveReply,
    routing.ACCOUNTS_GET: queries.AccountsGetReply,
    routing.COMMANDS_GET: queries.CommandsGetReply,
    routing.INVITATIONS_FAILED: queries.InvitationsFailedReply,
    routing.INVITATIONS_PEEK: queries.InvitationsPeekReply,
    routing.AUDIT_LIST: queries.AuditListReply,
}



def reply_type(query_key: str) -> str:
    """The message name (AMQP `type`) of a query's answer."""
    return f"{query_key}.reply"


# which userprov service consumes each message that comes to userprov (its queue is bound to the key)
CONSUMER_OF: dict[str, str] = {
    routing.ACCOUNTS_UPSERT: routing.USER_CREATION,
    routing.USERS_ADD: routing.USER_CREATION,
    routing.USERS_REMOVE: routing.USER_CREATION,
    routing.USERS_DEACTIVATE: routing.USER_CREATION,
    routing.USERS_REACTIVATE: routing.USER_CREATION,
    routing.USERS_UPDATE: routing.USER_CREATION,
    routing.SCIM_TOKENS_ADD: routing.USER_CREATION,
    routing.SCIM_TOKENS_REVOKE: routing.USER_CREATION,
    routing.SCIM_TOKENS_RESOLVE: routing.ACCOUNT_LOOKUP,
    routing.MEMBERSHIPS_CREATED: routing.ACCOUNT_LOOKUP,
    routing.USERS_GET: routing.ACCOUNT_LOOKUP,
    routing.USERS_LIST: routing.ACCOUNT_LOOKUP,
    routing.ACCOUNTS_GET: routing.ACCOUNT_LOOKUP,
    routing.COMMANDS_GET: routing.ACCOUNT_LOOKUP,
    routing.INVITATIONS_RESEND: routing.ACCOUNT_LOOKUP,
    routing.INVITATIONS_RETRY_FAILED: routing.ACCOUNT_LOOKUP,
    routing.INVITATIONS_FAILED: routing.ACCOUNT_LOOKUP,
    routing.INVITATIONS_PEEK: routing.ACCOUNT_LOOKUP,
    routing.AUDIT_LIST: routing.ACCOUNT_LOOKUP,
    routing.ASSET_RECORDED: routing.ACCOUNT_LOOKUP,
    routing.INVITATION_ISSUED: routing.INVITATION_MAILING,
    routing.INVITATION_ACCEPTED: routing.INVITATION_RESPONSE,
    routing.INVITATION_DECLINED: routing.INVITATION_RESPONSE,
}

ROUTING_KEY_OF: dict[type[Contract], str] = {
    model: key for key, model in (COMMAND_MODELS | EVENT_MODELS).items()
}


# userprov's own hand-offs, on the internal exchange: not part of the public interface
INTERNAL_EVENTS = frozenset({routing.MEMBERSHIPS_CREATED, routing.INVITATION_ISSUED})


# the link handlers' responses, each with a token: published on their own exchange
RESPONSES = frozenset({routing.INVITATION_ACCEPTED, routing.INVITATION_DECLINED})
# where a message was published before its exchange of today; still consumed there, for one version
DEPRECATED_EXCHANGE: dict[str, str] = {key: routing.EVENTS_EXCHANGE for key in RESPONSES}


def exchange_of(routing_key: str) -> str:
    if routing_key in COMMAND_MODELS:
        return routing.COMMANDS_EXCHANGE
    if routing_key in RESPONSES:
        return routing.RESPONSES_EXCHANGE
    return routing.INTERNAL_EXCHANGE if routing_key in INTERNAL_EVENTS else routing.EVENTS_EXCHANGE


def model_of(routing_key: str) -> type[Contract] | None:
    return COMMAND_MODELS.get(routing_key) or EVENT_MODELS.get(routing_key)


def subscriptions(service: str) -> tuple[tuple[str, str], ...]:
    """The (exchange, routing key) pairs the service's queue is bound to."""
    keys = [key for key, consumer in CONSUMER_OF.items() if consumer == service]
    return (*((exchange_of(key), key) for key in keys), *((DEPRECATED_EXCHANGE[key], key) for key in keys if key in DEPRECATED_EXCHANGE))
