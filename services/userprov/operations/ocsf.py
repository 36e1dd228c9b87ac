"""Audit entries as OCSF events (schema 1.8.0, Identity & Access Management), for a SIEM.

The account is the OCSF *group* its people are members of: joining and leaving it is Group
Management (3006), as is what happens to the account itself and whatever has no better class;
a member's own account being enabled or disabled is Account Change (3001); privileges given or
taken (a role, a SCIM token's right to provision) are User Access Management (3005). OCSF 1.9's
User Management (3007) is not used: the schema this is checked against (the ocsf-json-schema
package's export of schema.ocsf.io) ends at 1.8.0. The whole entry, its hash included, travels in
`unmapped.userprov`, so that nothing of it is lost to the mapping."""
from __future__ import annotations

from typing import Any

from contracts.queries import AuditEntry

OCSF_VERSION = "1.8.0"
IAM_CATEGORY = 3
GROUP_MANAGEMENT, ACCOUNT_CHANGE, USER_ACCESS = 3006, 3001, 3005
CLASS_NAMES = {GROUP_MANAGEMENT: "Group Management", ACCOUNT_CHANGE: "Account Change", USER_ACCESS: "User Access Management"}
OTHER = 99

# action -> (class, activity_id, activity name)
_FIXED: dict[str, tuple[int, int, str]] = {
    "user.added": (GROUP_MANAGEMENT, 3, "Add User"),
    "user.removed": (GROUP_MANAGEMENT, 4, "Remove User"),
    "user.activated": (ACCOUNT_CHANGE, 2, "Enable"),
    "user.reactivated": (ACCOUNT_CHANGE, 2, "Enable"),
    "user.deactivated": (ACCOUNT_CHANGE, 5, "Disable"),
    "user.suspended": (ACCOUNT_CHANGE, 5, "Disable"),
    "scim_token.added": (USER_ACCESS, 1, "Assign Privileges"),
    "scim_token.revoked": (USER_ACCESS, 2, "Revoke Privileges"),
}
_USER_TYPE = {"user": 1, "invitee": 1, "service": 4, "operator": 4, "scim_token": 4, "system": 3}
SCIM_PRIVILEGE = "scim:provision"


def _class_and_activity(entry: AuditEntry) -> tuple[int, int, str]:
    if entry.action in _FIXED:
        return _FIXED[entry.action]
    role = entry.changes.get("role")
    if entry.action == "user.updated" and isinstance(role, dict):
        return (USER_ACCESS, 2, "Revoke Privileges") if role.get("after") is None else (USER_ACCESS, 1, "Assign Privileges")
    if entry.action == "user.updated":
        return ACCOUNT_CHANGE, OTHER, "Update"
    if entry.action == "account.upserted" and entry.changes.get("created") is True:
        return GROUP_MANAGEMENT, 6, "Create"
    return GROUP_MANAGEMENT, OTHER, entry.action


def _user(entry: AuditEntry) -> dict[str, Any] | None:
    if entry.action.startswith("scim_token.") and isinstance(entry.changes.get("token_id"), str):
        return {"uid": entry.changes["token_id"], "name": "SCIM token", "type_id": 4, "type": "Service"}
    target = {k: v for k, v in (("uid", str(entry.target.user_id) if entry.target.user_id else None),
                                ("email_addr", entry.target.email), ("name", entry.target.email)) if v}
    return target or None


def _actor(entry: AuditEntry) -> dict[str, Any]:
    user = {"type_id": _USER_TYPE[entry.actor.kind], "type": entry.actor.kind, "name": entry.actor.id or "userprov"}
    if entry.actor.id:
        user["uid"] = entry.actor.id
        if entry.actor.kind == "user":
            user["email_addr"] = entry.actor.id
    return {"user": user, "app_name": f"userprov ({entry.via})"}


def event(account_id: str, entry: AuditEntry, product_version: str) -> dict[str, Any]:
    """The OCSF event of one entry."""
    class_uid, activity_id, activity_name = _class_and_activity(entry)
    refused = entry.action == "command.rejected"
    found: dict[str, Any] = {
        "class_uid": class_uid, "class_name": CLASS_NAMES[class_uid], "category_uid": IAM_CATEGORY,
        "category_name": "Identity & Access Management", "activity_id": activity_id, "activity_name": activity_name,
        "type_uid": class_uid * 100 + activity_id, "time": int(entry.at.timestamp() * 1000), "severity_id": 1,
        "severity": "Informational", "status_id": 2 if refused else 1, "status": "Failure" if refused else "Success",
        "message": f"{entry.action} in account {account_id}",
        "metadata": {
            "version": OCSF_VERSION, "uid": f"{account_id}/{entry.seq}", "sequence": entry.seq,
            "log_name": "userprov audit trail",
            "tenant_uid": account_id, "product": {"name": "userprov", "vendor_name": "userprov", "version": product_version},
            **({"correlation_uid": entry.correlation_id} if entry.correlation_id else {}),
        },
        "actor": _actor(entry),
        "unmapped": {"userprov": {"account_id": account_id, **entry.model_dump(mode="json")}},
    }
    if refused:
        found["status_code"] = str(entry.changes.get("reason", "rejected"))
    user = _user(entry)
    if class_uid == GROUP_MANAGEMENT:
        found["group"] = {"uid": account_id, "name": account_id, "type": "account"}
        if user:
            found["user"] = user
    else:
        found["user"] = user or {"name": "unknown"}
    if class_uid == USER_ACCESS:
        role = entry.changes.get("role")
        named = (role.get("after") or role.get("before")) if isinstance(role, dict) else None
        found["privileges"] = [f"role:{named}"] if named else [SCIM_PRIVILEGE]
    return found
