from __future__ import annotations

import pytest

from userprov.operations.import_file import FileRow, MalformedFile, read_rows
from userprov.operations.users_import import ImportOptions, chunks


class TestCsv:
    """A CSV as Excel and Google Sheets export it is read row by row, each row with its line."""

    def test_excel_utf8_with_a_byte_order_mark_crlf_quotes_and_a_trailing_empty_line(self) -> None:
        content = '\ufefffirst_name,last_name,email\r\nAda,"Lovelace, Countess",ada@example.com\r\n"Alan","Turing",alan@example.com\r\n\r\n'
        assert read_rows(content.encode()) == [FileRow(2, "Ada", "Lovelace, Countess", "ada@example.com"),
                                               FileRow(3, "Alan", "Turing", "alan@example.com")]

    def test_columns_in_any_order_with_an_external_id_and_a_quoted_line_break(self) -> None:
        content = 'Email,External_ID,First_Name,Last_Name\n"ada@example.com",E1,Ada,"Love\nlace"\ngrace@example.com,,Grace,Hopper\n'
        assert read_rows(content.encode()) == [FileRow(2, "Ada", "Love\nlace", "ada@example.com", "E1"),
                                               FileRow(4, "Grace", "Hopper", "grace@example.com")]

    def test_semicolons_as_excel_writes_them_where_the_decimal_mark_is_a_comma(self) -> None:
        assert read_rows(b"first_name;last_name;email\nAda;Lovelace;ada@example.com\n") == [
            FileRow(2, "Ada", "Lovelace", "ada@example.com")]

    @pytest.mark.parametrize(("content", "line", "says"), [
        (b"first_name,last_name,email\nAda,Lovelace,ada@example.com\nAlan,alan@example.com\n", 3, "2 field(s)"),
        (b'first_name,last_name,email\nAda,Lovelace,ada@example.com\nAlan,"Turing,alan@example.com\n', 3, "not valid CSV"),
        (b"first_name,last_name,email,phone\nAda,Lovelace,ada@example.com,1\n", 1, "unknown column(s) 'phone'"),
        (b"first_name,last_name,email\r\n\r\n", 1, "no rows"),
        (b"first_name,last_name,email\nAda,Lovelace,ada@example.com\nZo\xeb,Smith,zoe@example.com\n", 3, "not UTF-8"),
        ("first_name\tlast_name\temail\r\nAda\tLovelace\tada@example.com\r\n".encode("utf-16"), 1, "UTF-16 (what Excel's"),
    ])
    def test_a_malformed_file_names_its_line(self, content: bytes, line: int, says: str) -> None:
        with pytest.raises(MalformedFile) as refused:
            read_rows(content)
        assert refused.value.line == line and says in str(refused.value) and str(refused.value).startswith(f"line {line}: ")


class TestPasted:
    """A text file in the pasted format is read with the workers' own parser, each entry with its line."""

    def test_entries_by_line_and_semicolon(self) -> None:
        content = "\ufeffAda Lovelace ada@example.com; Alan Mathison Turing alan@example.com\r\n\r\nGrace\tBrewster Hopper\tgrace@example.com\n"
        assert read_rows(content.encode()) == [FileRow(1, "Ada", "Lovelace", "ada@example.com"),
                                               FileRow(1, "Alan", "Mathison Turing", "alan@example.com"),
                                               FileRow(3, "Grace", "Brewster Hopper", "grace@example.com")]

    def test_an_entry_that_cannot_be_read_names_its_line(self) -> None:
        with pytest.raises(MalformedFile, match=r"^line 2: Cannot read this entry: 2 word\(s\)"):
            read_rows(b"Ada Lovelace ada@example.com\nAlan alan@example.com\n")

    def test_an_empty_file(self) -> None:
        with pytest.raises(MalformedFile, match="empty"):
            read_rows(b"\n \n")


class TestCommandIds:
    """The commands' ids derive from the file, the options and the command's place: a rerun sends the same ones."""

    ROWS = [FileRow(n + 1, "A", "B", f"p{n}@example.com") for n in range(25)]

    def test_the_same_import_has_the_same_ids_and_another_has_others(self) -> None:
        options = ImportOptions("acme", ("gotomeeting", "openvoice"))
        first = chunks(b"file", self.ROWS, options, size=10)
        assert [len(c.rows) for c in first] == [10, 10, 5] and len({c.message_id for c in first}) == 3
        assert [c.message_id for c in chunks(b"file", self.ROWS, ImportOptions("acme", ("openvoice", "gotomeeting")), 10)] == [
            c.message_id for c in first]
        others = [chunks(b"file!", self.ROWS, options, 10), chunks(b"file", self.ROWS, ImportOptions("acme", ("gotomeeting",)), 10),
                  chunks(b"file", self.ROWS, ImportOptions("acme", options.products, dry_run=True), 10),
                  chunks(b"file", self.ROWS, options, 5)]
        for other in others:
            assert not {c.message_id for c in other} & {c.message_id for c in first}
