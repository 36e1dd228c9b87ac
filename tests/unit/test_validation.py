from __future__ import annotations

import pytest

from userprov.user_creation.validation import (
    Candidate,
    InvalidRow,
    ValidRow,
    check_email,
    check_name,
    checked_changes,
    validate_rows,
)


def codes(errors: list) -> list[str]:
    return [e.code for e in errors]


class TestNames:
    """Names: required, 1 to 32 characters after trimming, no control characters, newlines or <>."""

    def test_32_characters_pass_and_33_fail(self) -> None:
        assert check_name("first_name", "a" * 32)[1] == []
        assert codes(check_name("first_name", "a" * 33)[1]) == ["too_long"]

    def test_counted_in_characters_not_bytes(self) -> None:
        assert check_name("first_name", "Ż" * 32)[1] == []
        assert len(("Ż" * 32).encode()) == 64
        assert codes(check_name("first_name", "Ż" * 33)[1]) == ["too_long"]

    def test_combining_characters_count_once_after_nfc(self) -> None:
        assert check_name("last_name", "Z\u0307" * 32)[1] == []

    def test_trimmed_before_counting(self) -> None:
        name, errors = check_name("first_name", "  " + "a" * 32 + "  ")
        assert errors == [] and name == "a" * 32

    @pytest.mark.parametrize("value", ["", "   ", "\t"])
    def test_required(self, value: str) -> None:
        assert codes(check_name("first_name", value)[1]) == ["required"]

    @pytest.mark.parametrize("value", ["Ada<script>", "Ada>", "Ada\nLove", "Ada\x00", "Ada\x1b[31m", "A\u2028B"])
    def test_dangerous_characters(self, value: str) -> None:
        assert "invalid_characters" in codes(check_name("first_name", value)[1])

    def test_field_is_named(self) -> None:
        assert check_name("last_name", "")[1][0].field == "last_name"


class TestEmails:
    """Emails: required, at most 128 characters, valid syntax, stored trimmed and lower-cased."""

    def test_128_characters_pass_and_129_fail(self) -> None:
        domain = "@example.com"
        at_128 = "a" * 64 + "." + "b" * (128 - 65 - len(domain)) + domain
        assert len(at_128) == 128
        assert check_email(at_128)[1] == []
        at_129 = "a" * 64 + "." + "b" * (129 - 65 - len(domain)) + domain
        assert codes(check_email(at_129)[1]) == ["too_long"]

    def test_normalised(self) -> None:
        assert check_email("  Ada.Lovelace@Example.COM ") == ("ada.lovelace@example.com", [])

    @pytest.mark.parametrize("value", ["ada", "ada@", "@example.com", "ada@@example.com", "ada lovelace@example.com", "ada@example..com"])
    def test_invalid_syntax(self, value: str) -> None:
        assert codes(check_email(value)[1]) == ["invalid_email"]

    def test_required(self) -> None:
        assert codes(check_email(" ")[1]) == ["required"]


class TestRows:
    """A row collects every error; the second row with an email seen before is a duplicate."""

    def test_duplicates_compare_case_insensitively(self) -> None:
        results = validate_rows([
            Candidate(1, "A", "B", "ada@example.com"),
            Candidate(2, "C", "D", " ADA@example.com"),
            Candidate(3, "E", "F", "other@example.com"),
        ])
        assert isinstance(results[0], ValidRow) and isinstance(results[2], ValidRow)
        assert isinstance(results[1], InvalidRow)
        assert codes(list(results[1].errors)) == ["duplicate_in_command"]

    def test_invalid_row_does_not_claim_its_email(self) -> None:
        results = validate_rows([Candidate(1, "", "B", "ada@example.com"), Candidate(2, "A", "B", "ada@example.com")])
        assert isinstance(results[0], InvalidRow) and isinstance(results[1], ValidRow)

    def test_all_errors_of_a_row(self) -> None:
        [row] = validate_rows([Candidate(7, "", "x" * 40, "nope")])
        assert isinstance(row, InvalidRow) and row.row == 7
        assert {(e.field, e.code) for e in row.errors} == {("first_name", "required"), ("last_name", "too_long"), ("email", "invalid_email")}

    def test_unreadable_entry_reports_only_its_format(self) -> None:
        from contracts.paste import parse_pasted

        [entry] = parse_pasted("Nobody broken-address")
        [row] = validate_rows([Candidate(1, entry.first_name, entry.last_name, entry.email, entry.errors)])
        assert codes(list(row.errors)) == ["entry_format"]


class TestExternalIds:
    """An id of another system (a SCIM externalId) is kept exactly as given, or is a row error."""

    @pytest.mark.parametrize("external_id", [None, "00u1a2b3c4", "Ünïcode id with spaces", "x" * 255])
    def test_kept_as_given(self, external_id: str | None) -> None:
        [row] = validate_rows([Candidate(1, "A", "B", "ada@example.com", external_id=external_id)])
        assert isinstance(row, ValidRow) and row.external_id == external_id

    @pytest.mark.parametrize(("external_id", "code"), [
        ("x" * 256, "too_long"), ("", "invalid_characters"), ("   ", "invalid_characters"), ("id\x00", "invalid_characters"),
        ("id\u202e", "invalid_characters"), ("id\ud800", "invalid_characters"), ("line\nbreak", "invalid_characters"),
    ])
    def test_a_row_error_names_the_field(self, external_id: str, code: str) -> None:
        [row] = validate_rows([Candidate(1, "A", "B", "ada@example.com", external_id=external_id)])
        assert isinstance(row, InvalidRow) and [(e.field, e.code) for e in row.errors] == [("external_id", code)]


class TestChanges:
    def test_names_checked_as_a_rows_and_external_id_kept(self) -> None:
        values, errors = checked_changes({"first_name": " Ada ", "external_id": None})
        assert values == {"first_name": "Ada", "external_id": None} and errors == []
        _, errors = checked_changes({"last_name": "", "external_id": "x" * 300})
        assert [(e.field, e.code) for e in errors] == [("last_name", "required"), ("external_id", "too_long")]


class TestTextThatLiesOrCannotBeStored:
    """Names and emails that look empty, hide direction changes, or cannot be stored or sent."""

    @pytest.mark.parametrize("value", ["\u200b", "\ufeff", " \u200b\u200d ", "\u3164", "\u0301", "\u2800"])
    def test_invisible_only_names_are_required(self, value: str) -> None:
        assert codes(check_name("first_name", value)[1]) == ["required"]

    @pytest.mark.parametrize("value", ["Ana\u200b", "\u202eAna", "Ana\u2066x", "An\ufeffa", "Ana\ud800", "Ana\udcff", "A\x00B"])
    def test_format_and_unstorable_characters(self, value: str) -> None:
        assert codes(check_name("first_name", value)[1]) == ["invalid_characters"]

    @pytest.mark.parametrize("value", ["ada\ud800@example.com", "ada@exa\udcffmple.com", "ada\u200b@example.com", "a\x00@example.com"])
    def test_emails_that_cannot_be_stored_or_sent(self, value: str) -> None:
        email, errors = check_email(value)
        assert codes(errors) == ["invalid_characters"]
        email.encode("utf-8")  # what is echoed in the row result can be published

    def test_one_bad_row_among_good_ones(self) -> None:
        results = validate_rows([
            Candidate(1, "Good", "One", "good1@example.com"),
            Candidate(2, "Bad\ud800", "Row", "bad\ud800@example.com"),
            Candidate(3, "Good", "Two", "good2@example.com"),
        ])
        assert [type(r).__name__ for r in results] == ["ValidRow", "InvalidRow", "ValidRow"]
        assert results[1].email.encode("utf-8")

    def test_echoed_invalid_email_is_bounded(self) -> None:
        email, errors = check_email("x" * 2_000_000)
        assert codes(errors) == ["too_long"] and len(email) <= 128


class TestOneMailboxOneForm:
    """An address written two ways is one person: IDN in Unicode or punycode, NFC or NFD, any case."""

    @pytest.mark.parametrize(
        ("a", "b"),
        [
            ("ana@bücher.example.com", "ana@xn--bcher-kva.example.com"),
            ("zo\u00e9@example.com", "zoe\u0301@example.com"),
            ("Ana@BÜCHER.example.com", "ana@bücher.example.com"),
        ],
    )
    def test_same_mailbox(self, a: str, b: str) -> None:
        assert check_email(a)[0] == check_email(b)[0]
        [_, second] = validate_rows([Candidate(1, "A", "B", a), Candidate(2, "A", "B", b)])
        assert codes(list(second.errors)) == ["duplicate_in_command"]

    def test_smtp_gets_the_ascii_domain(self) -> None:
        from contracts.email import smtp_address

        assert smtp_address(check_email("Ana@Bücher.example.com")[0]) == "ana@xn--bcher-kva.example.com"
        assert smtp_address("plain@example.com") == "plain@example.com"
