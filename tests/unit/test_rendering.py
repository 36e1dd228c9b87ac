from __future__ import annotations

import pytest

from services.invitation_mailing.rendering import AccountTemplate, builtin_template, render_invitation, template_errors
from services.languages import SUPPORTED_LANGUAGES

CONTEXT = {
    "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "account_name": "Acme",
    "from_account_name": "Old Corp", "expires_at": "2026-12-01 10:00 UTC",
    "link": "https://l.example.com/i?token=T1", "accept_link": "https://l.example.com/i?token=T1&action=accept",
    "decline_link": "https://l.example.com/i?token=T1&action=decline",
}


class TestBuiltInTemplates:
    """Every supported language has a welcome and a transfer email carrying the right links."""

    @pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
    def test_welcome(self, language: str) -> None:
        email = render_invitation("welcome", language, CONTEXT, None)
        assert "token=T1" in email.text and "Acme" in email.subject
        assert '<a href="https://l.example.com/i?token=T1">' in email.html
        assert "Ada" in email.text

    @pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
    def test_transfer_has_accept_and_decline_links(self, language: str) -> None:
        email = render_invitation("transfer", language, CONTEXT, None)
        assert "action=accept" in email.text and "action=decline" in email.text
        assert "Old Corp" in email.text

    def test_unknown_language_falls_back_to_english(self) -> None:
        assert builtin_template("welcome", "sv") == builtin_template("welcome", "en")
        assert builtin_template("welcome", "../../etc") == builtin_template("welcome", "en")


class TestAccountTemplates:
    """Account templates are rendered in the sandbox; anything unusable falls back to the built-in email."""

    def test_used_for_welcome(self) -> None:
        email = render_invitation("welcome", "en", CONTEXT, AccountTemplate("Join {{ account_name }}", "Hi {{ first_name }}: {{ link }}"))
        assert email.subject == "Join Acme" and email.text == "Hi Ada: https://l.example.com/i?token=T1\n"

    @pytest.mark.parametrize("body", [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ lipsum.__globals__ }}",
        "{% set x = [].append(1) %}{{ x }}",
        "{{ 1 / 0 }}",
        "{{ self.__dict__ }}",
        "{{ range.__self__ }}",
    ])
    def test_escapes_yield_nothing_useful(self, body: str) -> None:
        email = render_invitation("welcome", "en", CONTEXT, AccountTemplate("Hello", body + " {{ link }}"))
        assert "token=T1" in email.text
        leaked = ("subclasses", "class", "globals", "builtins", "module", "function", "object at")
        assert not any(word in email.text for word in leaked), email.text

    @pytest.mark.parametrize("body", ["{{ 1 / 0 }} {{ link }}", "{{ cycler.__init__.__globals__ }} {{ link }}", "No link here"])
    def test_failing_or_linkless_templates_fall_back(self, body: str) -> None:
        email = render_invitation("welcome", "en", CONTEXT, AccountTemplate("Hello", body))
        assert email.subject == "Acme invites you to join GoTo"
        assert "token=T1" in email.text

    def test_unsafe_attribute_renders_nothing(self) -> None:
        email = render_invitation("welcome", "en", CONTEXT, AccountTemplate("Hello", "[{{ ''.nope }}] {{ link }}"))
        assert email.text.startswith("[] https://")

    def test_subject_is_one_line(self) -> None:
        email = render_invitation("welcome", "en", CONTEXT, AccountTemplate("A\r\nBcc: x@example.com", "{{ link }}"))
        assert "\n" not in email.subject and "\r" not in email.subject

    def test_html_part_escapes_text(self) -> None:
        email = render_invitation("welcome", "en", {**CONTEXT, "first_name": "<b>"}, AccountTemplate("S", "{{ first_name }} {{ link }}"))
        assert "&lt;b&gt;" in email.html and "<b>" not in email.html

    def test_transfer_ignores_account_welcome_template(self) -> None:
        email = render_invitation("transfer", "en", CONTEXT, AccountTemplate("Custom", "{{ link }}"))
        assert email.subject != "Custom"

    def test_syntax_errors_are_reported_by_part(self) -> None:
        assert template_errors("ok {{ name }}", "fine {{ link }}") == {}
        assert set(template_errors("{% if %}", "{{ x")) == {"subject", "body"}
        assert template_errors("ok", "no link") == {"body": "the body must contain {{ link }}"}
