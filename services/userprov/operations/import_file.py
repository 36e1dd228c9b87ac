"""The file `userprov import` reads: a CSV with a header (`first_name,last_name,email` and
optionally `external_id`), as Excel and Google Sheets export it (UTF-8 with or without a byte
order mark, CRLF line ends, quoted fields, a trailing empty line; fields separated by commas,
or by semicolons as Excel does in locales whose decimal mark is a comma), or a list in the pasted format
(contracts.paste): entries `First Last email` separated by `;` or line breaks, or three
tab-separated fields. Every row keeps the number of the line it starts on; a file that cannot be
read whole is refused with the line at fault, before anything is sent."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from contracts.paste import parse_pasted

CSV_COLUMNS = ("first_name", "last_name", "email")
OPTIONAL_COLUMNS = ("external_id",)


class MalformedFile(Exception):
    """The file cannot be read as a whole: nothing is sent."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line


@dataclass(frozen=True)
class FileRow:
    line: int  # where the row starts in the file, from 1
    first_name: str
    last_name: str
    email: str
    external_id: str | None = None

    def as_new_user(self) -> dict[str, str]:
        """As a `users.add` row (contracts.commands.NewUser)."""
        row = {"first_name": self.first_name, "last_name": self.last_name, "email": self.email}
        return row | ({"external_id": self.external_id} if self.external_id else {})


def read_rows(content: bytes) -> list[FileRow]:
    """The file's rows, in file order; MalformedFile naming the first line at fault."""
    text = _decoded(content)
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    delimiter = _csv_delimiter(first)
    if delimiter is not None:
        return _csv_rows(text, delimiter)
    rows = [_pasted_rows(number, line) for number, line in enumerate(lines, start=1)]
    found = [row for per_line in rows for row in per_line]
    if not found:
        raise MalformedFile(1, "no one to add: the file is empty")
    return found


@dataclass(frozen=True)
class Dialect:
    """How a spreadsheet wrote the file, for the results file to open in the same one: a `;` CSV
    opens in one column in a comma locale's Excel, and a CSV without a byte order mark opens
    there as Windows-1252 (Zoë becomes ZoÃ«)."""

    delimiter: str = ","
    byte_order_mark: bool = False


def dialect(content: bytes) -> Dialect:
    """The file's delimiter (`,` for a pasted list) and whether it starts with a UTF-8 byte order mark."""
    bom = content.startswith(b"\xef\xbb\xbf")
    try:
        text = content.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return Dialect(byte_order_mark=bom)
    first = next((line for line in text.splitlines() if line.strip()), "")
    return Dialect(_csv_delimiter(first) or ",", bom)


def _decoded(content: bytes) -> str:
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise MalformedFile(1, "UTF-16 (what Excel's \"Unicode Text\" writes): save the file as \"CSV UTF-8\" instead")
    try:
        return content.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        line = content[: error.start].count(b"\n") + 1
        raise MalformedFile(line, f"not UTF-8 (byte 0x{content[error.start]:02x}): save the file as UTF-8 (\"CSV UTF-8\" in"
                                  " Excel)") from None


def _csv_delimiter(line: str) -> str | None:
    """The delimiter when the line is a CSV header naming first_name, last_name and email."""
    for delimiter in (",", ";"):
        try:
            fields = next(csv.reader([line], delimiter=delimiter), [])
        except csv.Error:
            continue
        if set(CSV_COLUMNS) <= {f.strip().lower() for f in fields}:
            return delimiter
    return None


def _csv_rows(text: str, delimiter: str) -> list[FileRow]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[FileRow] = []
    header: list[str] | None = None
    header_line = 1
    ended = 0  # the line the previous record ended on
    try:
        for record in reader:
            line, ended = ended + 1, reader.line_num
            if not any(field.strip() for field in record):
                continue  # a blank line (a spreadsheet's trailing empty row)
            if header is None:
                header, header_line = _checked_header(line, record), line
                continue
            if len(record) != len(header):
                raise MalformedFile(line, f"{len(record)} field(s), the header has {len(header)} ({','.join(header)})")
            values = dict(zip(header, (field.strip() for field in record), strict=True))
            rows.append(FileRow(line, values["first_name"], values["last_name"], values["email"], values.get("external_id") or None))
    except csv.Error as error:
        raise MalformedFile(reader.line_num, f"not valid CSV: {error}") from None
    if not rows:
        raise MalformedFile(header_line, "no one to add: the file has this header and no rows")
    return rows


def _checked_header(line: int, record: list[str]) -> list[str]:
    columns = [field.strip().lower() for field in record]
    unknown = [c for c in columns if c not in CSV_COLUMNS + OPTIONAL_COLUMNS]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if unknown or repeated:
        problem = f"unknown column(s) {', '.join(map(repr, unknown))}" if unknown else f"column(s) {', '.join(repeated)} twice"
        raise MalformedFile(line, f"{problem}: the header is {','.join(CSV_COLUMNS)}[,{','.join(OPTIONAL_COLUMNS)}]")
    return columns


def _pasted_rows(number: int, line: str) -> list[FileRow]:
    rows = []
    for entry in parse_pasted(line):
        if entry.errors:
            raise MalformedFile(number, f"{entry.errors[0].message} (the pasted format: \"First Last email\" entries separated by"
                                        " ';' or line breaks, or three tab-separated fields)")
        rows.append(FileRow(number, entry.first_name, entry.last_name, entry.email))
    return rows
