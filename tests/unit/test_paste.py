from __future__ import annotations

from services.user_creation.paste import parse_pasted


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
