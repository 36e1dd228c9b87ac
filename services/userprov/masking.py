"""Keeps personal data out of logs and out of what operators are shown."""
from __future__ import annotations

import re

# Anything shaped like an address, in any text (an exception message, a body that is not JSON).
_EMAIL_IN_TEXT = re.compile(r"([^\s@<>()\[\]:;,\"'=]{1,64})@([^\s@<>()\[\]:;,\"'=]{1,255})")


def mask_email(email: str) -> str:
    local, at, domain = email.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_emails_in(text: str) -> str:
    return _EMAIL_IN_TEXT.sub(lambda m: f"{m.group(1)[:1]}***@{m.group(2)}", text)

