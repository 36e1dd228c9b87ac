from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from userprov.invitation_mailing.rendering import builtin_template, render_invitation
from userprov.languages import SUPPORTED_LANGUAGES
from userprov.sandbox import pool
from userprov.sandbox.pool import RenderFailed, SandboxLimits, TemplateSandbox
from userprov.sandbox.trial import AccountTemplate, trial_errors

CONTEXT = {
    "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "account_name": "Acme",
    "from_account_name": "Old Corp", "expires_at": "2026-12-01 10:00 UTC",
    "link": "https://l.example.com/i?token=T1", "accept_link": "https://l.example.com/i?token=T1&action=accept",
    "decline_link": "https://l.example.com/i?token=T1&action=decline",
}




@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[TemplateSandbox]:
    sandbox = TemplateSandbox(SandboxLimits(renderers=2, timeout_seconds=1.0, memory_mb=256, quarantine_seconds=60))
    yield sandbox
    await sandbox.close()


class TestBuiltInTemplates:
    """Every supported language has a welcome and a transfer email carrying the right links."""

    @pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
    async def test_welcome(self, language: str, sandbox: TemplateSandbox) -> None:
        email = await render_invitation("welcome", language, CONTEXT, None, sandbox)
        assert "token=T1" in email.text and "Acme" in email.subject
        assert '<a href="https://l.example.com/i?token=T1">' in email.html
        assert "Ada" in email.text

    @pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
    async def test_transfer_has_accept_and_decline_links(self, language: str, sandbox: TemplateSandbox) -> None:
        email = await render_invitation("transfer", language, CONTEXT, None, sandbox)
        assert "action=accept" in email.text and "action=decline" in email.text
        assert "Old Corp" in email.text

    def test_unknown_language_falls_back_to_english(self) -> None:
        assert builtin_template("welcome", "sv") == builtin_template("welcome", "en")
        assert builtin_template("welcome", "../../etc") == builtin_template("welcome", "en")


class TestHtmlLinks:
    """Only the invitation's own links become anchors in the HTML part, exactly as sent: text
    around a link never joins its href, and no URL a person typed becomes a live link."""

    @pytest.mark.parametrize("body", ["click {{ link }}. Then sign in.", "{{ link }}と", "({{ link }})", "<{{ link }}>",
                                      "{{ link }}!!", "{{ link }}&x=1"])
    async def test_the_href_is_the_link_whatever_follows_it(self, body: str, sandbox: TemplateSandbox) -> None:
        email = await render_invitation("welcome", "en", CONTEXT, AccountTemplate("S", body), sandbox)
        assert email.template == "account"
        assert re.findall(r'href="([^"]*)"', email.html) == ["https://l.example.com/i?token=T1"]

    async def test_a_url_typed_as_a_name_is_no_link(self, sandbox: TemplateSandbox) -> None:
        context = {**CONTEXT, "first_name": "https://evil.example.com/login"}
        for template in (None, AccountTemplate("S", "Hi {{ first_name }}, {{ link }}")):
            email = await render_invitation("welcome", "en", context, template, sandbox)
            assert "evil.example.com" in email.html
            assert all("evil" not in href for href in re.findall(r'href="([^"]*)"', email.html))

    async def test_transfer_links_are_each_their_own_anchor(self, sandbox: TemplateSandbox) -> None:
        email = await render_invitation("transfer", "en", CONTEXT, None, sandbox)
        assert set(re.findall(r'href="([^"]*)"', email.html)) == {
            "https://l.example.com/i?token=T1&amp;action=accept", "https://l.example.com/i?token=T1&amp;action=decline"}


class TestAccountTemplates:
    """Account templates render in the bounded sandbox; anything unusable falls back to the
    built-in email and says why."""

    async def test_used_for_welcome(self, sandbox: TemplateSandbox) -> None:
        email = await render_invitation(
            "welcome", "en", CONTEXT, AccountTemplate("Join {{ account_name }}", "Hi {{ first_name }}: {{ link }}"), sandbox
        )
        assert email.subject == "Join Acme" and email.text == "Hi Ada: https://l.example.com/i?token=T1\n"
        assert (email.template, email.fallback) == ("account", None)

    @pytest.mark.parametrize(("body", "reason"), [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
        ("{{ cycler.__init__.__globals__.os }}", "unsafe"),
        ("{{ lipsum.__globals__ }}", "error"),
        ("{% set x = [].append(1) %}{{ x }}", "unsafe"),
        ("{{ 1 / 0 }}", "error"),
        ("{{ self.__dict__ }}", "unsafe"),
        ("{{ range.__self__ }}", "error"),
        ("{{ range(10) }}", "error"),
    ])
    async def test_escapes_fall_back_and_say_why(self, body: str, reason: str, sandbox: TemplateSandbox) -> None:
        email = await render_invitation("welcome", "en", CONTEXT, AccountTemplate("Hello", body + " {{ link }}"), sandbox)
        assert "token=T1" in email.text
        assert (email.template, email.fallback) == ("builtin", reason)
        leaked = ("subclasses", "class", "globals", "builtins", "module", "function", "object at")
        assert not any(word in email.text for word in leaked), email.text

    async def test_linkless_template_falls_back(self, sandbox: TemplateSandbox) -> None:
        email = await render_invitation("welcome", "en", CONTEXT, AccountTemplate("Hello", "No link here"), sandbox)
        assert email.subject == "Acme invites you to join GoTo" and "token=T1" in email.text
        assert email.fallback == "link_missing"

    async def test_missing_names_render_empty(self, sandbox: TemplateSandbox) -> None:
        email = await render_invitation("welcome", "en", CONTEXT, AccountTemplate("Hello", "[{{ ''.nope }}{{ config }}] {{ link }}"), sandbox)
        assert email.text.startswith("[] https://") and email.template == "account"

    async def test_subject_is_one_line(self, sandbox: TemplateSandbox) -> None:
        email = await render_invitation("welcome", "en", CONTEXT, AccountTemplate("A\r\nBcc: x@example.com", "{{ link }}"), sandbox)
        assert "\n" not in email.subject and "\r" not in email.subject

    async def test_html_part_escapes_text(self, sandbox: TemplateSandbox) -> None:
        context = {**CONTEXT, "first_name": "<b>"}
        email = await render_invitation("welcome", "en", context, AccountTemplate("S", "{{ first_name }} {{ link }}"), sandbox)
        assert "&lt;b&gt;" in email.html and "<b>" not in email.html

    async def test_transfer_ignores_account_welcome_template(self, sandbox: TemplateSandbox) -> None:
        email = await render_invitation("transfer", "en", CONTEXT, AccountTemplate("Custom", "{{ link }}"), sandbox)
        assert email.subject != "Custom" and email.fallback is None


CPU_BOMB = "{% for a in link * 1000 %}{% for b in link * 1000 %}{% endfor %}{% endfor %}{{ link }}"
MEMORY_BOMB = "{{ link * 50000000 }}"


class TestBounds:
    """A template cannot hold a renderer longer than the time bound, allocate past the memory
    bound, or produce more than the output bound; the worker's event loop never waits on it."""

    async def test_cpu_bomb_is_cut_at_the_time_bound(self, sandbox: TemplateSandbox) -> None:
        started = time.monotonic()
        with pytest.raises(RenderFailed) as failed:
            await sandbox.render({"body": CPU_BOMB + "{# cpu #}"}, CONTEXT)
        assert failed.value.code == "timeout" and time.monotonic() - started < 3

    async def test_memory_bomb_is_refused(self, sandbox: TemplateSandbox) -> None:
        with pytest.raises(RenderFailed) as failed:
            await sandbox.render({"body": MEMORY_BOMB}, CONTEXT)
        assert failed.value.code == "memory"

    async def test_output_is_bounded(self, sandbox: TemplateSandbox) -> None:
        with pytest.raises(RenderFailed) as failed:
            await sandbox.render({"body": "{% for a in link %}{% for b in link %}{{ link * 100 }}{% endfor %}{% endfor %}"}, CONTEXT)
        assert failed.value.code == "too_large"

    async def test_non_ascii_output_within_the_bound_renders(self, sandbox: TemplateSandbox) -> None:
        parts = await sandbox.render({"subject": "{{ 'Ŵ' * 90000 }}", "body": "{{ '😀' * 9000 }}"}, CONTEXT)
        assert len(parts["subject"]) == 90000 and len(parts["body"]) == 9000

    async def test_non_ascii_output_past_the_bound_is_too_large_not_a_crash(self, sandbox: TemplateSandbox) -> None:
        for template in ({"body": "{{ '😀' * 150000 }}"}, {"subject": "{{ 'Ŵ' * 60000 }}", "body": "{{ 'Ŵ' * 60000 }}"}):
            with pytest.raises(RenderFailed) as failed:
                await sandbox.render(template, CONTEXT)
            assert failed.value.code == "too_large", failed.value

    async def test_the_renderers_inherit_no_secret(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("USERPROV_DATABASE_URL", "postgresql://u:secret@db.example.com/x")
        own = TemplateSandbox(SandboxLimits(renderers=1))
        try:
            await own.render({"body": "hi"}, CONTEXT)
            [child] = own._idle
            environ = Path(f"/proc/{child.process.pid}/environ").read_bytes().split(b"\0")
            assert not [v for v in environ if b"USERPROV" in v or b"secret" in v]
        finally:
            await own.close()

    @pytest.mark.parametrize("interpreter", ["missing", "silent"])
    async def test_a_renderer_that_cannot_start_is_a_render_failure(
        self, interpreter: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        silent = tmp_path / "silent"
        silent.write_text("#!/bin/sh\nexec sleep 30\n")
        silent.chmod(0o755)
        monkeypatch.setattr(sys, "executable", str(silent) if interpreter == "silent" else str(tmp_path / "missing"))
        monkeypatch.setattr(pool, "START_SECONDS", 0.5)
        own = TemplateSandbox(SandboxLimits(renderers=1))
        try:
            started = time.monotonic()
            with pytest.raises(RenderFailed) as failed:
                await own.render({"body": "hi"}, CONTEXT)
            assert failed.value.code == "crashed" and "did not start" in failed.value.message
            assert time.monotonic() - started < 3
        finally:
            await own.close()

    async def test_a_template_slow_in_practice_falls_back_after_a_few_renders(self) -> None:
        own = TemplateSandbox(SandboxLimits(renderers=1, slow_seconds=0.02, slow_renders=3))
        slow = {"subject": "S", "body": "{% for a in link * 60 %}{% for b in link * 60 %}{% endfor %}{% endfor %}{{ link }}"}  # ~70 ms
        try:
            for _ in range(3):
                await own.render(slow, CONTEXT)
            with pytest.raises(RenderFailed) as failed:
                await own.render(slow, CONTEXT)
            assert failed.value.code == "too_slow"
            assert await own.render({"body": "{{ link }}"}, CONTEXT)  # others render as before
            email = await render_invitation("welcome", "en", CONTEXT, AccountTemplate("S", slow["body"]), own)
            assert email.template == "builtin" and email.fallback == "too_slow"
        finally:
            await own.close()

    async def test_a_template_that_hit_a_bound_fails_at_once_next_time(self, sandbox: TemplateSandbox) -> None:
        bomb = {"body": CPU_BOMB + "{# quarantine #}"}
        with pytest.raises(RenderFailed):
            await sandbox.render(bomb, CONTEXT)
        started = time.monotonic()
        with pytest.raises(RenderFailed) as again:
            await sandbox.render(bomb, CONTEXT)
        assert again.value.code == "timeout" and time.monotonic() - started < 0.1

    async def test_the_event_loop_stays_free_and_good_templates_still_render(self, sandbox: TemplateSandbox) -> None:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        try:
            bomb = asyncio.create_task(sandbox.render({"body": CPU_BOMB + "{# loop #}"}, CONTEXT))
            good = await sandbox.render({"body": "Hi {{ first_name }} {{ link }}"}, CONTEXT)
            assert good["body"].startswith("Hi Ada")
            with pytest.raises(RenderFailed):
                await bomb
        finally:
            ticker.cancel()
        assert ticks >= 50  # the loop ran all along the bomb's second

    async def test_a_killed_renderer_is_replaced(self, sandbox: TemplateSandbox) -> None:
        with pytest.raises(RenderFailed):
            await sandbox.render({"body": CPU_BOMB + "{# replaced #}"}, CONTEXT)
        assert (await sandbox.render({"body": "ok {{ link }}"}, CONTEXT))["body"].startswith("ok")


class TestTrialRenderAtUpsert:
    """What can be refused at accounts.upsert is: syntax, internals, the link, the bounds."""

    @pytest.mark.parametrize(("subject", "body", "expected"), [
        ("ok {{ first_name }}", "fine {{ link }}", {}),
        ("{% if %}", "{{ link }}", {"subject": "syntax"}),
        ("ok", "{{ x", {"body": "syntax"}),
        ("ok", "no link", {"body": "link_missing"}),
        ("{{ ''.__class__ }}", "{{ link }}", {"subject": "unsafe"}),
        ("ok", "{{ link }}" + "{{ (" * 400 + "1" + ") }}" * 400, {"body": "error"}),
        ("ok", MEMORY_BOMB, {"body": "memory"}),
        ("ok", CPU_BOMB + "{# trial #}", {"body": "timeout"}),
        ("ok", "{{ link }}{{ first_name * 4000 }}", {"body": "too_large"}),
    ])
    async def test_refused(self, subject: str, body: str, expected: dict[str, str], sandbox: TemplateSandbox) -> None:
        errors = await trial_errors(sandbox, AccountTemplate(subject, body), "Acme")
        assert {part: code for part, (code, _) in errors.items()} == expected

    async def test_a_bomb_that_waits_for_a_name_passes_the_trial(self, sandbox: TemplateSandbox) -> None:
        """Why send time needs the bounds too: the trial cannot know every member's name."""
        body = "{% if first_name == 'Boom' %}" + CPU_BOMB + "{% endif %}{{ link }}"
        assert await trial_errors(sandbox, AccountTemplate("Hi", body), "Acme") == {}
