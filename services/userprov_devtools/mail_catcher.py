"""A local SMTP server (aiosmtpd) that accepts everything: for the demo, the benchmark and
docker-compose. Writes each email to a folder when given one, and notes when it arrived."""
from __future__ import annotations

import email
import email.policy
import re
import threading
import time
from collections.abc import Callable
from email.parser import BytesHeaderParser
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from contracts.text import printable

NUMBERED = re.compile(r"(\d+)-.*\.eml")


class CatchingHandler:
    def __init__(self, folder: Path | None = None, on_email: Callable[[str, float], None] | None = None,
                 on_written: Callable[[str, str, Path], None] | None = None) -> None:
        """`on_email(recipient, arrival time)` for each recipient; `on_written(recipient, subject,
        file)` for each one written to the folder. Files are numbered on from the highest number
        already in the folder, and none is ever overwritten: a catcher started again on the same
        folder adds to what an earlier one wrote."""
        self.folder = folder
        self.on_email = on_email
        self.on_written = on_written
        self._number = _highest_number(folder) if folder is not None else 0
        self._lock = threading.Lock()
        self.written: dict[str, Path] = {}

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        arrived = time.time()
        number = self._next_number()
        for rcpt in envelope.rcpt_tos:
            if self.folder is not None:
                path = self._write(self.folder, number, rcpt, envelope.original_content or b"")
                self.written[rcpt.lower()] = path
                if self.on_written is not None:
                    self.on_written(rcpt, subject_of(envelope.original_content or b""), path)
            if self.on_email is not None:
                self.on_email(rcpt.lower(), arrived)
        return "250 Message accepted for delivery"

    def _next_number(self) -> int:
        with self._lock:
            self._number += 1
            return self._number

    def _write(self, folder: Path, number: int, recipient: str, content: bytes) -> Path:
        while True:
            path = folder / f"{number:06d}-{_safe(recipient)}.eml"
            try:
                with path.open("xb") as out:  # another writer in the folder may have taken this name since
                    out.write(content)
                return path
            except FileExistsError:
                number = self._next_number()


def _highest_number(folder: Path) -> int:
    numbers = [int(found[1]) for path in folder.glob("*.eml") if (found := NUMBERED.fullmatch(path.name))]
    return max(numbers, default=0)


def subject_of(content: bytes) -> str:
    """The email's Subject, decoded, on one line and without control characters."""
    try:
        subject = BytesHeaderParser(policy=email.policy.default).parsebytes(content)["Subject"]
    except Exception:  # noqa: BLE001 - whatever a sender wrote, the email is caught; only its subject is unreadable
        return "(an unreadable subject)"
    return printable(" ".join(str(subject).split()), 200) if subject is not None else "(no subject)"


def announce(recipient: str, subject: str, path: Path) -> None:
    """One line per email caught, for `userprov mail-catcher`: a development tool's own output,
    so the address is shown whole (the workers' logs never show one)."""
    print(f"to {printable(recipient, 200)}: {subject} -> {path}", flush=True)


def _safe(address: str) -> str:
    return "".join(c if c.isalnum() or c in "@._-" else "_" for c in address)


def start_mail_catcher(host: str, port: int, handler: CatchingHandler) -> Controller:
    if handler.folder is not None:
        handler.folder.mkdir(parents=True, exist_ok=True)
    controller = Controller(handler, hostname=host, port=port, data_size_limit=10 * 1024 * 1024)
    controller.start()
    return controller


def text_part(path: Path) -> str:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    part = message.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""
