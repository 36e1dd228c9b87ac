"""One complete example of every message, with its AMQP properties, for the AsyncAPI document.
A test validates each against its model, so that no example lies."""
from __future__ import annotations

from typing import Any

ACCOUNT = "acme-emea"
USER = "3f2d8c1e-6b0a-4c8e-9a57-2f0d4b9e1c11"
INVITATION = "9b1c7e52-0d4f-4a3b-8e6c-5a2f1d0c9b77"
COMMAND = "5e0f3b9a-1c2d-4e8f-a7b6-0d9c8e7f6a51"
CORRELATION = "onboarding-2026-11-25-0001"

PAYLOADS: dict[str, dict[str, Any]] = {
    "accounts.upsert": {
        "account_id": ACCOUNT,
        "name": "Acme EMEA",
        "licences": {"gotomeeting": 250, "gotowebinar": 20},
        "groups": ["sales", "support"],
        "welcome_templates": {"en": {"subject": "Welcome to {{ account_name }}",
                                     "body": "Hello {{ first_name }},\n\nCreate your password: {{ link }}"}},
    },
    "users.add": {
        "account_id": ACCOUNT,
        "requested_by": "admin@acme.example.com",
        "users": [{"first_name": "Ada", "last_name": "Lovelace", "email": "ada@acme.example.com"},
                  {"first_name": "Edsger", "last_name": "Dijkstra", "email": "edsger@acme.example.com", "active": False}],
        "pasted": "Grace Hopper grace@acme.example.com\nAlan Mathison Turing alan@acme.example.com",
        "products": ["gotomeeting"],
        "role": "manager",
        "language": "en",
        "group": "sales",
    },
    "users.remove": {"account_id": ACCOUNT, "email": "ada@acme.example.com", "requested_by": "admin@acme.example.com"},
    "users.deactivate": {"account_id": ACCOUNT, "email": "ada@acme.example.com", "requested_by": "admin@acme.example.com"},
    "users.reactivate": {"account_id": ACCOUNT, "email": "ada@acme.example.com", "requested_by": "admin@acme.example.com"},
    "scim_tokens.add": {"account_id": ACCOUNT, "token_id": "5b6c7d8e-9f01-4a2b-8c3d-4e5f6a7b8c9d",
                        "token_hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
    "scim_tokens.revoke": {"token_id": "5b6c7d8e-9f01-4a2b-8c3d-4e5f6a7b8c9d"},
    "scim_tokens.resolve": {"token_hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
    "users.update": {"account_id": ACCOUNT, "email": "ada@acme.example.com", "last_name": "King", "external_id": "00u1a2b3c4d5e6f7g8h9"},
    "invitations.resend": {"account_id": ACCOUNT, "email": "grace@acme.example.com"},
    "invitations.retry_failed": {"account_id": ACCOUNT},
    "users.get": {"account_id": ACCOUNT, "email": "ada@acme.example.com"},
    "users.list": {"account_id": ACCOUNT, "start_index": 1, "count": 100},
    "accounts.get": {"account_id": ACCOUNT},
    "commands.get": {"command_id": COMMAND},
    "invitations.failed": {"account_id": ACCOUNT, "limit": 100},
    "invitations.peek": {"token": "q2Xh0v3mZ8r5Jk1LwN4pT7yB6cE9fA0sD2gH5jK8lM1"},
    "audit.list": {"account_id": ACCOUNT, "requested_by": "admin@acme.example.com", "since": "2026-11-01T00:00:00Z",
                   "actions": ["user.added", "user.removed"], "limit": 100},
    "invitation.accepted": {"token": "q2Xh0v3mZ8r5Jk1LwN4pT7yB6cE9fA0sD2gH5jK8lM1"},
    "invitation.declined": {"token": "q2Xh0v3mZ8r5Jk1LwN4pT7yB6cE9fA0sD2gH5jK8lM1"},
    "asset.recorded": {"account_id": "globex", "email": "ada@acme.example.com", "kind": "session_history", "ref": "meeting-4711"},
    "users.add.completed": {
        "command_id": COMMAND,
        "account_id": ACCOUNT,
        "results": [
            {"row": 1, "email": "ada@acme.example.com", "outcome": "accepted", "user_id": USER, "errors": []},
            {"row": 2, "email": "grace@acme.example.com", "outcome": "already_member",
             "user_id": "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d", "errors": []},
            {"row": 3, "email": "alan@acme", "outcome": "rejected", "user_id": None,
             "errors": [{"field": "email", "code": "invalid_email", "message": "The part after the @-sign is not valid."}]},
        ],
    },
    "users.add.progress": {
        "command_id": COMMAND, "account_id": ACCOUNT,
        "progress": {"rows": 5000, "created": 4990, "invited": 4990, "emailed": 3120, "failed": 10}, "done": False,
        "published_at": "2026-12-01T09:30:12.250Z",
    },
    "invitation.sent": {
        "invitation_id": INVITATION, "account_id": ACCOUNT, "user_id": USER, "email": "ada@acme.example.com", "kind": "welcome",
        "expires_at": "2026-12-02T09:30:00Z", "sent_count": 1, "template": "account", "template_fallback": None,
    },
    "invitation.failed": {
        "invitation_id": INVITATION, "account_id": ACCOUNT, "user_id": USER, "email": "ada@acme.example.com",
        "reason": "permanent failure: 550 5.1.1 mailbox unavailable",
    },
    "invitations.retried": {"command_id": COMMAND, "account_id": ACCOUNT, "retried": 3},
    "invitation.response_rejected": {"reason": "expired", "invitation_id": INVITATION, "account_id": ACCOUNT, "user_id": USER},
    "user.activated": {"account_id": ACCOUNT, "user_id": USER, "email": "ada@acme.example.com"},
    "user.transferred": {
        "user_id": USER, "email": "ada@acme.example.com", "from_account_id": "globex", "to_account_id": ACCOUNT,
        "moved": {"session_history": 12, "scheduled_sessions": 2, "upcoming_recordings": 1},
    },
    "user.suspended": {"account_id": ACCOUNT, "user_id": USER, "email": "ada@acme.example.com"},
    "user.removed": {"account_id": ACCOUNT, "user_id": USER, "email": "ada@acme.example.com", "released": {"gotomeeting": 1}},
    "user.deactivated": {"account_id": ACCOUNT, "user_id": USER, "email": "ada@acme.example.com", "released": {"gotomeeting": 1}},
    "scim_token.added": {"account_id": ACCOUNT, "token_id": "5b6c7d8e-9f01-4a2b-8c3d-4e5f6a7b8c9d"},
    "scim_token.revoked": {"account_id": ACCOUNT, "token_id": "5b6c7d8e-9f01-4a2b-8c3d-4e5f6a7b8c9d"},
    "user.updated": {"account_id": ACCOUNT, "user_id": USER, "email": "ada@acme.example.com",
                     "changed": {"last_name": "King", "external_id": "00u1a2b3c4d5e6f7g8h9"}},
    "user.reactivated": {"account_id": ACCOUNT, "user_id": USER, "email": "ada@acme.example.com", "status": "active",
                         "seats": {"gotomeeting": 1}},
    "account.upserted": {"account_id": ACCOUNT},
    "asset.counted": {"account_id": "globex", "user_id": USER, "email": "ada@acme.example.com", "kind": "session_history",
                      "ref": "meeting-4711", "new": True},
    "command.rejected": {
        "command_id": COMMAND, "type": "users.add", "reason": "unknown_product",
        "message": "The account holds no licences for openvoice.", "errors": [],
    },
    "memberships.created": {"account_id": ACCOUNT, "membership_ids": ["0c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d5e"]},
    "invitation.issued": {"invitations": [{"invitation_id": INVITATION, "kind": "welcome"}]},
    "users.get.reply": {
        "found": True, "user_id": USER, "email": "ada@acme.example.com", "first_name": "Ada", "last_name": "Lovelace",
        "status": "invited", "role": "manager", "products": ["gotomeeting"], "language": "en", "group": "sales",
        "settings_template": None, "external_id": None,
        "invitation": {"kind": "welcome", "status": "sent", "expires_at": "2026-12-02T09:30:00Z", "sent_count": 1},
    },
    "users.list.reply": {
        "account_id": ACCOUNT, "total": 1, "start_index": 1,
        "users": [{
            "user_id": USER, "email": "ada@acme.example.com", "first_name": "Ada", "last_name": "Lovelace", "status": "active",
            "role": None, "products": ["gotomeeting"], "language": "en", "group": None, "settings_template": None,
            "external_id": "00u1a2b3c4d5e6f7g8h9", "added_at": "2026-11-30T09:30:00Z", "status_changed_at": "2026-11-30T10:02:00Z",
        }],
    },
    "scim_tokens.resolve.reply": {"found": True, "account_id": ACCOUNT, "token_id": "5b6c7d8e-9f01-4a2b-8c3d-4e5f6a7b8c9d"},
    "accounts.get.reply": {
        "found": True, "account_id": ACCOUNT, "name": "Acme EMEA", "status": "active",
        "licences": {"gotomeeting": {"total": 250, "used": 3}}, "members": {"active": 2, "invited": 1},
    },
    "commands.get.reply": {
        "found": True, "command_id": COMMAND, "command_type": "users.add", "outcome": "done",
        "events": [{"type": "users.add.completed", "body": {
            "command_id": COMMAND, "account_id": ACCOUNT,
            "results": [{"row": 1, "email": "ada@acme.example.com", "outcome": "accepted", "user_id": USER, "errors": []}]}}],
        "progress": {"rows": 1, "created": 1, "invited": 1, "emailed": 0, "failed": 0},
    },
    "invitations.failed.reply": {
        "invitations": [{
            "invitation_id": INVITATION, "account_id": ACCOUNT, "user_id": USER, "email": "ada@acme.example.com", "kind": "welcome",
            "reason": "temporary failure, retries exhausted (212 tries in 5 d): 451 4.7.1 try again later",
            "failed_at": "2026-11-30T09:30:00Z",
        }],
        "next_after": None,
    },
    "audit.list.reply": {
        "account_id": ACCOUNT,
        "entries": [{
            "seq": 42, "at": "2026-11-30T09:30:00.123456Z", "action": "user.removed",
            "actor": {"kind": "user", "id": "admin@acme.example.com"},
            "target": {"user_id": USER, "email": "ada@acme.example.com"},
            "changes": {"status": {"before": "active", "after": "removed"}, "released": {"gotomeeting": 1}},
            "via": "bus", "message_id": COMMAND, "correlation_id": CORRELATION,
            "hash": "5c1e0b9f2a7d4e8c3b6a1f0e9d8c7b6a5f4e3d2c1b0a99887766554433221100",
        }],
        "next_cursor": "eyJzIjo0MiwiZiI6IjdhM2YwYzE5ZTJkNCJ9",
        "checkpoint": {"seq": 0, "hash": "0000000000000000000000000000000000000000000000000000000000000000"},
        "head": {"seq": 57, "hash": "a3f9c2e1d0b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a392"},
    },
    "invitations.peek.reply": {
        "status": "open", "kind": "transfer", "account_name": "Acme EMEA", "language": "en", "email": "ada@acme.example.com",
        "first_name": "Ada", "expires_at": "2026-12-02T09:30:00Z", "member_status": "transfer_pending",
        "from_account_name": "Acme Consulting",
        "moves": {"session_history": 12, "scheduled_sessions": 2, "upcoming_recordings": 1},
    },
}

QUERIES = {"users.get", "users.list", "scim_tokens.resolve", "accounts.get", "commands.get", "invitations.failed", "invitations.peek",
           "audit.list"}


def properties(name: str) -> dict[str, Any]:
    """The AMQP properties the example travels with."""
    props: dict[str, Any] = {
        "message_id": COMMAND if name in ("users.add",) else "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6",
        "correlation_id": CORRELATION,
        "type": name,
        "content_type": "application/json",
        "delivery_mode": 2,
        "timestamp": 1795599000,
    }
    if name in QUERIES:
        props["reply_to"] = "amq.gen-Jzx0hL4d2mQ9vR3tS6wY1A"
    return props
