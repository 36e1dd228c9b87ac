"""What `userprov import` gives back: the results file, a line per row of the imported file
(`row, email, outcome, invitation, codes, message`), and the summary."""
from __future__ import annotations

import csv
import os
from collections import Counter
from pathlib import Path

from userprov.operations.import_file import Dialect
from userprov.operations.users_import import Import

COMMAS = Dialect()
COLUMNS = ("row", "email", "outcome", "invitation", "codes", "message")
# a cell a spreadsheet would read as a formula (CSV injection): written with a leading quote
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def outcomes(state: Import) -> Counter[str]:
    """Rows per outcome: accepted, already_member, rejected, refused (their command was), unknown."""
    counted: Counter[str] = Counter()
    for _, result, refused in state.results():
        counted[result.outcome if result else "refused" if refused else "unknown"] += 1
    return counted


def unwritable(path: Path, imported: Path) -> str | None:
    """Why the results could not be written there, checked before anything is sent (the people
    would be added, then the file refused); None when they can."""
    if path.exists() and imported.exists() and path.samefile(imported):
        return "is the file being imported: the results would replace it"
    if path.is_dir():
        return "is a folder"
    folder = path.parent
    if not folder.is_dir():
        return f"cannot be written: no folder {str(folder)!r}"
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return "cannot be written: permission denied"
    return None


def write_results(path: Path, state: Import, dialect: Dialect = COMMAS) -> None:
    """Written whole to a file beside it, then renamed: an interrupted run never leaves half a file.
    In the imported file's `dialect`: its delimiter, and a byte order mark if it had one."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8-sig" if dialect.byte_order_mark else "utf-8", newline="") as out:
        writer = csv.writer(out, delimiter=dialect.delimiter)
        writer.writerow(COLUMNS)
        for row, result, refused in state.results():
            if result is not None:
                cells = [row.line, result.email, result.outcome, result.invitation or "",
                         ";".join(e.code for e in result.errors), "; ".join(f"{e.field}: {e.message}" for e in result.errors)]
            elif refused is not None:
                cells = [row.line, row.email, "refused", "", refused.reason, refused.message]
            else:
                cells = [row.line, row.email, "unknown", "", "", "no outcome yet: run the same import again"]
            writer.writerow([_safe(c) for c in cells])
    os.replace(partial, path)


def _safe(cell: object) -> object:
    return f"'{cell}" if isinstance(cell, str) and cell.startswith(_FORMULA_STARTS) else cell


def summary(state: Import) -> list[str]:
    counted = outcomes(state)
    dry = any(s.completed is not None and s.completed.dry_run for s in state.states)
    lines = [
        f"{'dry run: ' if dry else ''}{state.rows} row(s): {counted['accepted']} {'would be added' if dry else 'added'},"
        f" {counted['already_member']} already member(s), {counted['rejected']} rejected"
        + (f", {counted['refused']} in refused command(s)" if counted["refused"] else "")
        + (f", {counted['unknown']} without an outcome yet" if counted["unknown"] else "")
    ]
    if dry:
        invitations = Counter(r.invitation for _, r, _ in state.results() if r is not None and r.invitation)
        lines.append(f"invitations it would send: {invitations['welcome']} welcome, {invitations['transfer']} transfer")
        lines += _seats(state)
    elif counted["accepted"]:
        lines.append(f"emails: {state.emailed} sent, {state.failed - counted['rejected']} failed, of {state.created} new member(s)")
    for s in state.states:
        if s.refused is not None:
            lines.append(f"command {s.chunk.message_id} ({len(s.chunk.rows)} rows) refused: {s.refused.reason}: {s.refused.message}")
    if state.resumed:
        lines.append(f"{state.resumed} command(s) had been sent by an earlier run: their outcome was read, not sent again")
    return lines


def _seats(state: Import) -> list[str]:
    """A dry run's seats, added up over its commands (each was checked against the account as it stands)."""
    needed: Counter[str] = Counter()
    free: dict[str, int] = {}
    left = None
    for s in state.states:
        if s.completed is None:
            continue
        for seat in s.completed.seats or []:
            needed[seat.product] += seat.needed
            free[seat.product] = seat.free
        if s.completed.invitations_left is not None:
            left = s.completed.invitations_left
    lines = [f"seats of {product}: {needed[product]} needed, {free[product]} free" + (" (too few)" if needed[product] > free[product] else "")
             for product in sorted(free)]
    if left is not None:
        lines.append(f"invitation quota: {left} invitation(s) left in the last 24 hours")
    return lines
