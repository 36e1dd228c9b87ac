from __future__ import annotations

import pytest

from services.user_creation.validation import Candidate, InvalidRow, ValidRow, check_email, check_name, validate_rows


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
        from services.user_creation.paste import parse_pasted

        entry = parse_pasted("Nobody broken-address")[0]
        [row] = validate_rows([Candidate(1, entry.first_name, entry.last_name, entry.email, entry.errors)])
        assert codes(list(row.errors)) == ["entry_format"]
