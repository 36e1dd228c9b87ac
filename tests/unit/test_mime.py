"""The email's bytes, parsed back as a mail client would: headers, both parts, any language,
and no header a template could inject."""
from __future__ import annotations

import email
import email.policy

import pytest

from userprov.invitation_mailing.mime import build_message, envelope_sender
from userprov.invitation_mailing.rendering import RenderedEmail

SENDER = "GoTo Admin <no-reply@userprov.example.com>"


def parsed(subject: str, text: str = "Hello https://l.example.com/i?token=T1\n", to: str = "ada@example.com") -> email.message.EmailMessage:
    rendered = RenderedEmail(subject=subject, text=text, html=f"<p>{text}</p>")
    raw = build_message(SENDER, to, rendered)
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


@pytest.mark.parametrize("subject", ["Acme invites you to join GoTo", "Société Exemple lädt Sie zu GoTo ein",
                                     "Acme から GoTo への招待", "x" * 300 + " é"])
def test_headers_and_parts_round_trip(subject: str) -> None:
    text = "Bonjour Ünï,\n\nこんにちは https://l.example.com/i?token=T1\n"
    message = parsed(subject, text)
    assert str(message["Subject"]) == subject
    assert str(message["From"]) == SENDER and str(message["To"]) == "ada@example.com"
    assert message["Message-ID"].endswith("@userprov.example.com>") and message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    assert message.get_body(("plain",)).get_content() == text
    assert message.get_body(("html",)).get_content() == f"<p>{text}</p>"
    assert not message.defects


def test_no_header_can_be_injected() -> None:
    message = parsed("Hi\r\nBcc: victim@example.com\nX-Evil: 1")
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert "Bcc: victim@example.com" in str(message["Subject"])


def test_envelope_sender_is_the_bare_address() -> None:
    assert envelope_sender(SENDER) == "no-reply@userprov.example.com"


def test_a_sender_name_that_is_not_ascii_keeps_its_address() -> None:
    raw = build_message("Zoë Admin <no-reply@example.com>", "ada@example.com", RenderedEmail("S", "t\n", "<p>t</p>"))
    sender = email.message_from_bytes(raw, policy=email.policy.default)["From"]
    assert sender.addresses[0].display_name == "Zoë Admin" and sender.addresses[0].addr_spec == "no-reply@example.com"
