"""The invitation page's pure parts: its catalogs, its form keys, which page a peek shows."""
from __future__ import annotations

import re
from datetime import UTC, datetime
from importlib import resources

import pytest
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract
from structlog.testing import capture_logs

from contracts import routing
from contracts.base import LANGUAGES
from contracts.queries import AssetCounts, InvitationsPeekReply
from userprov.links import i18n
from userprov.links.forms import FormKeys, plausible_token
from userprov.links.pages import answered, shown, title
from userprov.links.server import form_secret
from userprov.settings import Settings

PACKAGE = resources.files("userprov.links")
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _msgids() -> set[str]:
    found = set()
    with (PACKAGE / "templates" / "page.html").open("rb") as template:
        for _, _, message, _ in babel_extract(template, ("_", "gettext"), [], {}):
            found.add(message if isinstance(message, str) else message[0])  # _("...", name=...): the keywords come as None
    # the titles: the msgids of pages.title's table, each followed by its parameters
    found |= set(re.findall(r'\("([^"]+)", \{', (PACKAGE / "pages.py").read_text()))
    return found


class TestCatalogs:
    @pytest.mark.parametrize("language", [lang for lang in LANGUAGES if lang != "en"])
    def test_every_message_is_translated_with_the_same_placeholders(self, language: str) -> None:
        with (PACKAGE / "locales" / f"{language}.po").open("rb") as po:
            catalog = read_po(po, locale=language)
        for msgid in _msgids():
            message = catalog.get(msgid)
            assert message is not None and message.string, f"{language}: no translation of {msgid!r}"
            assert sorted(PLACEHOLDER.findall(message.string)) == sorted(PLACEHOLDER.findall(msgid)), (language, msgid)

    def test_every_email_language_has_a_page(self) -> None:
        for language in LANGUAGES:
            assert i18n.translations(language).gettext("Decline")
        assert i18n.translations("fr").gettext("Decline") == "Refuser"

    def test_a_page_without_an_invitation_follows_the_browser(self) -> None:
        assert i18n.from_header("de-CH,de;q=0.9,en;q=0.8") == "de"
        assert i18n.from_header("ja;q=0.5, fr;q=0.9") == "fr"
        assert i18n.from_header("xx-YY, *;q=0.1") == "en"
        assert i18n.from_header("\x00;q=abc,,;q=") == "en"
        assert i18n.date(datetime(2026, 12, 2, 9, 30, tzinfo=UTC), "de").startswith("2. Dezember 2026")


class TestFormKeys:
    def test_a_key_is_for_one_token_one_secret_and_a_day(self) -> None:
        keys, token = FormKeys(b"secret"), "q2Xh0v3mZ8r5Jk1LwN4pT7yB6cE9fA0sD2gH5jK8lM1"
        key = keys.issue(token, now=1_000_000)
        assert keys.valid(key, token, now=1_000_000 + 3600)
        assert not keys.valid(key, token + "x", now=1_000_000)
        assert not FormKeys(b"other").valid(key, token, now=1_000_000)
        assert not keys.valid(key, token, now=1_000_000 + 2 * 86400)
        assert not keys.valid(key, token, now=1_000_000 - 60)
        for forged in ("", "A" * 36, "é" * 36, "%%%", "A" * 1000, key[:-2]):
            assert not keys.valid(forged, token, now=1_000_000)

    def test_only_tokens_userprov_could_have_issued_are_asked_about(self) -> None:
        assert plausible_token("q2Xh0v3mZ8r5Jk1LwN4pT7yB6cE9fA0sD2gH5jK8lM1")
        for hostile in (None, "", "short", "t" * 257, "abc\x00defghijklmnopqrstu", "jeton-été-" * 3, "a b" * 10, "\ud800" * 20):
            assert not plausible_token(hostile)


def _peeked(**fields: object) -> InvitationsPeekReply:
    return InvitationsPeekReply.model_validate({"status": "open", "kind": "welcome", "account_name": "Acme", "language": "en",
                                                "member_status": "invited", **fields})


class TestWhichPage:
    def test_what_a_get_shows(self) -> None:
        moves = {"session_history": 1, "scheduled_sessions": 0, "upcoming_recordings": 2}
        assert shown(InvitationsPeekReply(status="unknown")).state == "unknown"
        assert shown(_peeked()).state == "welcome"
        assert shown(_peeked(kind="transfer", from_account_name="Old", moves=moves)).state == "transfer"
        assert shown(_peeked(from_account_name="Old", moves=moves)).state == "transfer"  # active elsewhere since: accepting moves them
        assert (shown(_peeked(status="expired")).state, shown(_peeked(status="expired")).status) == ("expired", 410)
        assert shown(_peeked(status="used", response="accepted", member_status="active")).state == "already_in"
        assert shown(_peeked(status="used", response="accepted", member_status="active", kind="transfer", moves=moves)).state == "transferred"
        assert shown(_peeked(status="used", response="accepted", member_status="removed")).state == "used"
        assert shown(_peeked(status="used", response="declined", member_status="suspended", kind="transfer")).state == "suspended"

    def test_what_a_post_shows(self) -> None:
        peeked = _peeked(kind="transfer")
        moved = answered(peeked, routing.USER_TRANSFERRED, b'{"moved": {"session_history": 3}}')
        assert moved is not None and moved.moves == AssetCounts(session_history=3)
        assert answered(peeked, routing.INVITATION_RESPONSE_REJECTED, b'{"reason": "last_admin"}').status == 409  # type: ignore[union-attr]
        assert answered(peeked, routing.INVITATION_RESPONSE_REJECTED, b'{"reason": "already_used"}') is None  # look again

    def test_every_state_has_a_title(self) -> None:
        for state in ("welcome", "transfer", "activated", "already_in", "transferred", "suspended", "used", "expired", "revoked",
                      "last_admin", "unknown", "form_expired", "busy"):
            assert title(state, "A", "B")[0]


def test_an_unset_form_secret_is_a_warning_only_where_there_may_be_replicas() -> None:
    def logged(**given: object) -> list[tuple[str, str]]:
        with capture_logs() as logs:
            secret = form_secret(Settings(**given))
        assert len(secret) >= 16
        return [(entry["event"], entry["log_level"]) for entry in logs]

    for deployment in ("0.0.0.0", "::", "192.0.2.7", "links.example.com"):
        assert logged(links_host=deployment) == [("links_form_secret_unset", "warning")]
    for local in ("127.0.0.1", "::1", "localhost"):  # a single process on this machine: a random secret is enough
        assert logged(links_host=local) == [("links_form_secret_unset", "debug")]
    assert logged(links_host="0.0.0.0", links_form_secret="s3cret-for-tests") == []
    assert form_secret(Settings(links_form_secret="s3cret-for-tests")) == b"s3cret-for-tests"
