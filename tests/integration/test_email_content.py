from __future__ import annotations

import time

from contracts import routing
from contracts.base import LANGUAGES
from tests.integration.conftest import address
from tests.support.flows import add_users, emails_to, tokens_in
from tests.support.smtp import RecordingSmtpServer
from userprov_devtools.bus_client import BusClient
from userprov_devtools.waiting import eventually


class TestEmailLanguageAndTemplates:
    """Emails use the account's template for the language, else the built-in one, else English; sandboxed."""

    async def test_language_fallbacks_and_sandbox(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        account_id = await account(
            name="Société Exemple",
            welcome_templates={
                "fr": {"subject": "Bienvenue chez {{ account_name }}", "body": "Salut {{ first_name }} ! {{ link }}"},
                # passes the trial render; fails for this member's name at send time
                "it": {"subject": "Ciao", "body": "{% if first_name == 'Ünï' %}{{ ''.__class__ }}{% endif %} {{ link }}"},
            },
        )
        fr, it, de, ja = address("fr"), address("it"), address("de"), address("ja")
        for email, language in ((fr, "fr"), (it, "it"), (de, "de"), (ja, "ja")):
            await add_users(bus, {"account_id": account_id, "language": language, "users": [{"first_name": "Ünï", "last_name": "Côdé", "email": email}]})

        [french] = await emails_to(smtp, fr)
        assert french.subject == "Bienvenue chez Société Exemple"
        assert french.text.startswith("Salut Ünï !")
        assert "link" in tokens_in(french)

        [italian] = await emails_to(smtp, it)  # the sandbox refused the template: the built-in one is used, and says so
        assert "object" not in italian.subject and "class" not in italian.subject and "globals" not in italian.text
        assert italian.subject == "Société Exemple ti invita a unirti a GoTo"
        assert "link" in tokens_in(italian)

        [german] = await emails_to(smtp, de)
        assert "Passwort" in german.text and german.subject.endswith("lädt Sie zu GoTo ein")
        [japanese] = await emails_to(smtp, ja)
        assert "パスワード" in japanese.text
        await eventually(lambda: len(bus.find(routing.INVITATION_SENT, account_id=account_id)) == 4)
        sent = {e.body["email"]: (e.body["template"], e.body["template_fallback"]) for e in bus.find(routing.INVITATION_SENT, account_id=account_id)}
        assert sent == {fr: ("account", None), it: ("builtin", "unsafe"), de: ("builtin", None), ja: ("builtin", None)}

    async def test_broken_account_template_falls_back(self, bus: BusClient, smtp: RecordingSmtpServer, account) -> None:
        account_id = await account(welcome_templates={"en": {"subject": "Hi", "body": "{{ 1 / (last_name != 'T') }} {{ link }}"}})
        person = address("broken-template")
        await add_users(bus, {"account_id": account_id, "users": [{"first_name": "B", "last_name": "T", "email": person}]})
        [email] = await emails_to(smtp, person)
        assert "create your password" in email.text
        assert "link" in tokens_in(email)
        [sent] = await eventually(lambda: bus.find(routing.INVITATION_SENT, email=person))
        assert (sent.body["template"], sent.body["template_fallback"]) == ("builtin", "error")

    async def test_template_with_bad_syntax_is_refused_at_upsert(self, bus: BusClient) -> None:
        message_id = await bus.publish(routing.ACCOUNTS_UPSERT, {
            "account_id": "bad-template", "name": "x", "welcome_templates": {"en": {"subject": "ok", "body": "{% for %}"}}})
        [rejected] = await eventually(lambda: bus.find(routing.COMMAND_REJECTED, command_id=message_id))
        assert rejected.body["reason"] == "invalid_template"
        assert rejected.body["errors"][0]["field"] == "welcome_templates.en.body"

    async def test_languages_are_checked_before_any_template_is_tried(self, bus: BusClient) -> None:
        slow = {"subject": "ok", "body": "{% for a in link * 1000 %}{% for b in link * 1000 %}{% endfor %}{% endfor %}{{ link }}"}
        many = await bus.publish(routing.ACCOUNTS_UPSERT, {"account_id": "many-languages", "name": "x",
                                                           "welcome_templates": {f"l{n}": slow for n in range(10_000)}})
        [rejected] = await eventually(lambda: bus.find(routing.COMMAND_REJECTED, command_id=many), 10)
        assert rejected.body["reason"] == "schema_invalid" and rejected.body["errors"][0]["field"] == "welcome_templates"
        started = time.monotonic()
        unsupported = await bus.publish(routing.ACCOUNTS_UPSERT, {"account_id": "unsupported-languages", "name": "x",
                                                                  "welcome_templates": {"xx": slow, "yy": slow, "en": slow}})
        [rejected] = await eventually(lambda: bus.find(routing.COMMAND_REJECTED, command_id=unsupported), 10)
        assert {e["field"]: e["code"] for e in rejected.body["errors"]} == {
            "welcome_templates.xx": "unsupported_language", "welcome_templates.yy": "unsupported_language"}
        assert time.monotonic() - started < 1.0  # no template was tried (each of these takes the whole 1 s bound)

    async def test_an_upserts_templates_are_tried_within_one_budget(self, bus: BusClient) -> None:
        slow = {"subject": "ok", "body": "{% for a in link * 1000 %}{% for b in link * 1000 %}{% endfor %}{% endfor %}{{ link }}"}
        started = time.monotonic()
        message_id = await bus.publish(routing.ACCOUNTS_UPSERT, {"account_id": "slow-templates", "name": "x",
                                                                 "welcome_templates": {lang: {**slow, "body": slow["body"] + lang}
                                                                                       for lang in LANGUAGES}})  # distinct: none quarantined by another
        [rejected] = await eventually(lambda: bus.find(routing.COMMAND_REJECTED, command_id=message_id), 30)
        elapsed = time.monotonic() - started
        codes = [e["code"] for e in rejected.body["errors"]]
        assert set(codes) == {"timeout", "render_budget_exceeded"} and codes.count("timeout") <= 4, codes
        assert elapsed < 6, elapsed  # three times the 1 s bound, and the last try under way; not eight of them

    async def test_templates_that_reach_for_internals_or_exceed_the_bounds_are_refused_at_upsert(self, bus: BusClient) -> None:
        message_id = await bus.publish(routing.ACCOUNTS_UPSERT, {
            "account_id": "hostile-templates", "name": "x", "welcome_templates": {
                "en": {"subject": "{{ ''.__class__.__mro__ }}", "body": "{{ link }}"},
                "fr": {"subject": "ok", "body": "{{ link * 50000000 }}"},
                "de": {"subject": "ok", "body": "{% for a in link * 1000 %}{% for b in link * 1000 %}{% endfor %}{% endfor %}{{ link }}"},
                "es": {"subject": "ok", "body": "{{ link }}" + "{{ (" * 500 + "1" + ") }}" * 500},
            }})
        [rejected] = await eventually(lambda: bus.find(routing.COMMAND_REJECTED, command_id=message_id), 30)
        assert rejected.body["reason"] == "invalid_template"
        assert {e["field"]: e["code"] for e in rejected.body["errors"]} == {
            "welcome_templates.en.subject": "unsafe",
            "welcome_templates.fr.body": "memory",
            "welcome_templates.de.body": "timeout",
            "welcome_templates.es.body": "error",
        }
