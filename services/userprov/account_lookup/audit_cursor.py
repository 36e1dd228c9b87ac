"""`audit.list`'s cursor: opaque to callers, it holds the seq of the page's last entry and a
fingerprint of what was asked (the account, the filters, the order), so that a cursor given with
another account or other filters is refused rather than answered with a page of something else.
It is no secret and no permission: whoever holds one still sees only what they may ask for."""
from __future__ import annotations

import base64
import binascii
import hashlib
import json

from contracts.queries import AuditList
from userprov.runtime.errors import Rejected

_ASKED = ("account_id", "since", "until", "user_id", "email", "actions", "order")


def _fingerprint(query: AuditList) -> str:
    asked = query.model_dump(mode="json", include=set(_ASKED))
    if asked["actions"] is not None:
        asked["actions"] = sorted(set(asked["actions"]))
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()[:16]


def encode(query: AuditList, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{seq}.{_fingerprint(query)}".encode()).decode().rstrip("=")


def decode(query: AuditList) -> int | None:
    """The seq after which the page starts; None without a cursor. Rejected (invalid_cursor) for
    a cursor audit.list did not give, or gave for another account, other filters or order."""
    if query.cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(query.cursor + "=" * (-len(query.cursor) % 4)).decode("ascii")
        seq_text, fingerprint = text.split(".")
        seq = int(seq_text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Rejected("invalid_cursor", "The cursor is not one audit.list gave: pass a next_cursor unchanged.") from None
    if not seq_text.isdigit() or seq >= 2**63:  # a bigint, written plainly
        raise Rejected("invalid_cursor", "The cursor is not one audit.list gave: pass a next_cursor unchanged.")
    if fingerprint != _fingerprint(query):
        raise Rejected("invalid_cursor", "The cursor was given for another account, other filters or another order: ask the"
                       " next page with the query that gave it.")
    return seq
