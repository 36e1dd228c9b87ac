from __future__ import annotations

import csv
from pathlib import Path

from contracts.events import CommandRejected, UsersAddCompleted
from contracts.queries import AddProgress
from userprov.operations.import_file import Dialect, FileRow, dialect
from userprov.operations.import_results import COLUMNS, summary, unwritable, write_results
from userprov.operations.users_import import Chunk, ChunkState, Import


def _state() -> Import:
    first = ChunkState(Chunk("c1", [FileRow(2, "Ada", "Lovelace", "ada@example.com"), FileRow(3, "Eve", "Hacker", "=cmd|' /C calc'!A0")]))
    first.completed = UsersAddCompleted.model_validate({"command_id": "c1", "account_id": "acme", "results": [
        {"row": 1, "email": "ada@example.com", "outcome": "accepted", "invitation": "welcome", "errors": []},
        {"row": 2, "email": "=cmd|' /C calc'!A0", "outcome": "rejected", "errors": [
            {"field": "email", "code": "invalid_email", "message": "The email address is not valid."}]}]})
    first.progress = AddProgress(rows=2, created=1, invited=1, emailed=1, failed=1)
    second = ChunkState(Chunk("c2", [FileRow(4, "Alan", "Turing", "alan@example.com")]))
    second.refused = CommandRejected(command_id="c2", type="users.add", reason="unknown_group", message="The account has no user group 'x'.")
    return Import([first, second])


class TestResultsFile:
    """A line per row of the file, with its line number; a refused command's rows say why; no cell reads as a formula."""

    def test_rows_outcomes_and_cells(self, tmp_path: Path) -> None:
        out = tmp_path / "results.csv"
        write_results(out, _state())
        with out.open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
        assert rows == [list(COLUMNS),
                        ["2", "ada@example.com", "accepted", "welcome", "", ""],
                        ["3", "'=cmd|' /C calc'!A0", "rejected", "", "invalid_email", "email: The email address is not valid."],
                        ["4", "alan@example.com", "refused", "", "unknown_group", "The account has no user group 'x'."]]
        assert not (tmp_path / "results.csv.partial").exists()

    def test_in_the_imported_files_dialect(self, tmp_path: Path) -> None:
        """A European Excel file (BOM, `;`) gets its results the same way; a plain one plain UTF-8 with commas."""
        excel = "\ufefffirst_name;last_name;email\r\nZoë;Ōtsuka;zoe@example.com\r\n".encode()
        assert dialect(excel) == Dialect(";", True)
        assert dialect(b"first_name,last_name,email\nA,B,a@example.com\n") == Dialect(",", False)
        assert dialect("Zoë Ōtsuka zoe@example.com; Al Bo al@example.com".encode()) == Dialect(",", False)
        out = tmp_path / "results.csv"
        write_results(out, _state(), dialect(excel))
        content = out.read_bytes()
        assert content.startswith(b"\xef\xbb\xbfrow;email;outcome;invitation;codes;message\r\n")
        with out.open(encoding="utf-8-sig", newline="") as f:
            assert next(csv.reader(f, delimiter=";")) == list(COLUMNS)
        write_results(out, _state())
        assert out.read_bytes().startswith(b"row,email,")

    def test_the_summary(self) -> None:
        lines = summary(_state())
        assert lines[0] == "3 row(s): 1 added, 0 already member(s), 1 rejected, 1 in refused command(s)"
        assert lines[1] == "emails: 1 sent, 0 failed, of 1 new member(s)"
        assert lines[2].startswith("command c2 (1 rows) refused: unknown_group")


class TestWhereResultsGo:
    """Checked before anything is sent: the people were added, then the file refused, and a
    results file named like the input replaced it."""

    def test_refused_before_sending(self, tmp_path: Path) -> None:
        imported = tmp_path / "people.csv"
        imported.write_text("first_name,last_name,email\n", encoding="utf-8")
        assert unwritable(imported, imported) == "is the file being imported: the results would replace it"
        assert unwritable(tmp_path / "." / "people.csv", imported) == "is the file being imported: the results would replace it"
        assert unwritable(tmp_path, imported) == "is a folder"
        assert unwritable(tmp_path / "missing" / "r.csv", imported) == f"cannot be written: no folder {str(tmp_path / 'missing')!r}"

    def test_a_new_or_existing_file_beside_it_is_fine(self, tmp_path: Path) -> None:
        imported = tmp_path / "people.csv"
        imported.write_text("first_name,last_name,email\n", encoding="utf-8")
        assert unwritable(tmp_path / "results.csv", imported) is None
        (tmp_path / "old.csv").write_text("row\n", encoding="utf-8")
        assert unwritable(tmp_path / "old.csv", imported) is None
