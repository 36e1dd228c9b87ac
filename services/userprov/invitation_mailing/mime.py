"""The bytes of an invitation email: multipart/alternative, text and HTML, injection-proof headers."""
from __future__ import annotations

import base64
import secrets
from email.header import Header
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from functools import lru_cache

from userprov.invitation_mailing.rendering import RenderedEmail


def build_message(sender: str, to: str, email: RenderedEmail) -> bytes:
    """The email's bytes: multipart/alternative with a text and an HTML part, base64 in UTF-8.

    Assembled directly rather than through the `email` package's header registry, which cost
    a fifth of a mailing worker's time. Every header value is one line: the subject is
    collapsed by rendering and RFC 2047-encoded here when it is not ASCII, the recipient is a
    validated address, and the sender is configuration; line breaks are removed all the same."""
    boundary = f"=_userprov_{secrets.token_hex(12)}"
    headers = [
        ("From", _address_header(sender)),
        ("To", _one_line(to)),
        ("Subject", _header_text(email.subject)),
        ("Date", formatdate(usegmt=True)),
        ("Message-ID", make_msgid(domain=sender.rpartition("@")[2].rstrip(">") or None)),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
    lines = [f"{name}: {value}" for name, value in headers]
    for subtype, content in (("plain", email.text), ("html", email.html)):
        lines += [
            "",
            f"--{boundary}",
            f'Content-Type: text/{subtype}; charset="utf-8"',
            "Content-Transfer-Encoding: base64",
            "",
            base64.encodebytes(content.encode("utf-8")).decode("ascii").rstrip("\n").replace("\n", "\r\n"),
        ]
    lines += ["", f"--{boundary}--", ""]
    return "\r\n".join(lines).encode("utf-8")


def envelope_sender(sender: str) -> str:
    return parseaddr(sender)[1]


@lru_cache(maxsize=8)
def _address_header(value: str) -> str:
    """`Name <address>` with a non-ASCII name RFC 2047-encoded (the address itself stays as is)."""
    name, address = parseaddr(_one_line(value))
    return formataddr((name, address), charset="utf-8") if address else _header_text(value)


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _header_text(value: str) -> str:
    value = _one_line(value)
    if value.isascii() and len(value) < 900:
        return value
    return Header(value, "utf-8", maxlinelen=76).encode(linesep="\r\n")
