from __future__ import annotations

import pytest

from contracts.paste import parse_pasted


class TestPasteParser:
    """Pasted lists: `;` and newlines separate entries; tabs mean three fields; blanks are skipped."""

    def test_words_first_last_email(self) -> None:
        [entry] = parse_pasted("Alan Mathison Turing alan@example.com")
        assert (entry.first_name, entry.last_name, entry.email, entry.errors) == ("Alan", "Mathison Turing", "alan@example.com", ())

    def test_semicolons_and_newlines_separate(self) -> None:
        entries = parse_pasted("A B a@example.com;C D c@example.com\nE F e@example.com\r\nG H g@example.com")
        assert [e.email for e in entries] == ["a@example.com", "c@example.com", "e@example.com", "g@example.com"]

    def test_blank_entries_are_skipped(self) -> None:
        assert [e.email for e in parse_pasted(" ;; \n\n\t ;A B a@example.com; ")] == ["a@example.com"]

    def test_a_byte_order_mark_before_the_list_is_no_part_of_the_first_name(self) -> None:
        [ada, grace] = parse_pasted("\ufeffAda\tLovelace\tada@example.com\r\nGrace\tHopper\tgrace@example.com")
        assert (ada.first_name, ada.errors, grace.first_name) == ("Ada", (), "Grace")

    def test_tabs_keep_multi_word_names(self) -> None:
        [entry] = parse_pasted("Mary Ann\tvan der Berg\tmary@example.com")
        assert (entry.first_name, entry.last_name, entry.email) == ("Mary Ann", "van der Berg", "mary@example.com")

    def test_tabs_need_exactly_three_fields(self) -> None:
        [entry] = parse_pasted("Mary\tBerg\tx\tmary@example.com")
        assert entry.errors[0].code == "entry_format"
        assert entry.email == "mary@example.com"

    def test_too_few_words(self) -> None:
        [entry] = parse_pasted("Cher cher@example.com")
        assert entry.errors[0].field == "pasted" and entry.errors[0].code == "entry_format"
        assert entry.email == "cher@example.com"

    def test_order_is_kept(self) -> None:
        text = "\n".join(f"F{n} L{n} p{n}@example.com" for n in range(50))
        assert [e.first_name for e in parse_pasted(text)] == [f"F{n}" for n in range(50)]


class TestLineBreaksAndLimits:
    @pytest.mark.parametrize("separator", ["\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\r\n", "\r", ";"])
    def test_every_line_break_separates(self, separator: str) -> None:
        text = f"A B a@example.com{separator}C D c@example.com"
        assert [e.email for e in parse_pasted(text)] == ["a@example.com", "c@example.com"]

    def test_rows_are_counted_before_the_rest_is_parsed(self) -> None:
        from contracts.commands import UsersAdd
        from userprov.user_creation.plan import MAX_ROWS, TooManyRows, candidates_of

        exactly = UsersAdd(account_id="a", pasted="\n".join(f"A B p{n}@example.com" for n in range(MAX_ROWS)))
        assert len(candidates_of(exactly)) == MAX_ROWS
        huge = UsersAdd(account_id="a", pasted="A B a@example.com\n" * 100_000)
        with pytest.raises(TooManyRows, match="more than"):
            candidates_of(huge)
