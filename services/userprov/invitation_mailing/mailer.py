"""Sends emails over SMTP; a temporary failure (no connection, 4xx) is retried with backoff."""
from __future__ import annotations

import asyncio
import base64
import secrets
import socket
from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr, formatdate, make_msgid, parseaddr

import aiosmtplib
import structlog
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from contracts.email import smtp_address
from userprov.invitation_mailing.rendering import RenderedEmail
from userprov.runtime import metrics
from userprov.settings import Settings

log = structlog.get_logger()


class TemporarySmtpFailure(Exception):
    pass


class PermanentSmtpFailure(Exception):
    pass


@dataclass(frozen=True)
class SmtpOutcome:
    delivered: bool
    reason: str | None = None


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._local_hostname: str | None = settings.smtp_local_hostname

    async def _ehlo_name(self) -> str:
        """The name this client gives in EHLO, looked up once per process (aiosmtplib would
        otherwise call getfqdn in a thread for every connection)."""
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return self._local_hostname

    async def send(self, to: str, email: RenderedEmail) -> SmtpOutcome:
        """Delivered once the SMTP server accepted it; not delivered after a permanent
        failure or once the temporary-failure retries ran out."""
        recipient = smtp_address(to)
        message = build_message(self._settings.smtp_sender, recipient, email)
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(lambda e: isinstance(e, TemporarySmtpFailure)),
                stop=stop_after_attempt(self._settings.smtp_attempts),
                wait=wait_exponential_jitter(
                    multiplier=self._settings.smtp_backoff_seconds,
                    max=self._settings.smtp_backoff_max_seconds,
                    jitter=self._settings.smtp_backoff_seconds,
                ),
                reraise=True,
            ):
                with attempt:
                    await self._send_once(message, recipient)
        except TemporarySmtpFailure as error:
            metrics.EMAILS.labels("failed").inc()
            return SmtpOutcome(False, f"temporary failure, retries exhausted: {error}")
        except PermanentSmtpFailure as error:
            metrics.EMAILS.labels("failed").inc()
            return SmtpOutcome(False, f"permanent failure: {error}")
        metrics.EMAILS.labels("delivered").inc()
        return SmtpOutcome(True)

    async def _send_once(self, message: bytes, recipient: str) -> None:
        s = self._settings
        try:
            # aiosmtplib's timeout is per protocol step; this one bounds the whole try, so that
            # every try fits in the invitation's claim (Settings.mailing_claim_seconds)
            async with asyncio.timeout(s.smtp_timeout_seconds):
                await aiosmtplib.send(
                    message,
                    sender=envelope_sender(s.smtp_sender),
                    recipients=[recipient],
                    hostname=s.smtp_host,
                    port=s.smtp_port,
                    username=s.smtp_username,
                    password=s.smtp_password,
                    start_tls=s.smtp_starttls,
                    timeout=s.smtp_timeout_seconds,
                    local_hostname=await self._ehlo_name(),
                )
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [r.code for r in error.recipients]
            raise _by_code(min(codes) if codes else 550, "; ".join(f"{r.code} {r.message}" for r in error.recipients)) from error
        except aiosmtplib.SMTPResponseException as error:
            raise _by_code(error.code, f"{error.code} {error.message}") from error
        except aiosmtplib.SMTPNotSupported as error:  # e.g. a non-ASCII mailbox and a server without SMTPUTF8
            raise PermanentSmtpFailure(f"not supported by the SMTP server: {error}") from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            log.info("smtp_unreachable", error_type=type(error).__name__)
            raise TemporarySmtpFailure(type(error).__name__) from error


def _by_code(code: int, detail: str) -> Exception:
    log.info("smtp_refused", code=code)
    return TemporarySmtpFailure(detail) if 400 <= code < 500 or code < 0 else PermanentSmtpFailure(detail)


def build_message(sender: str, to: str, email: RenderedEmail) -> bytes:
    """The email's bytes: multipart/alternative with a text and an HTML part, base64 in UTF-8.

    Assembled directly rather than through the `email` package's header registry, which cost
    a fifth of a mailing worker's time. Every header value is one line: the subject is
    collapsed by rendering and RFC 2047-encoded here when it is not ASCII, the recipient is a
    validated address, and the sender is configuration; line breaks are removed all the same."""
    boundary = f"=_userprov_{secrets.token_hex(12)}"
    headers = [
        ("From", _address_header(sender)),
        ("To", _one_line(to)),
        ("Subject", _header_text(email.subject)),
        ("Date", formatdate(usegmt=True)),
        ("Message-ID", make_msgid(domain=sender.rpartition("@")[2].rstrip(">") or None)),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
    lines = [f"{name}: {value}" for name, value in headers]
    for subtype, content in (("plain", email.text), ("html", email.html)):
        lines += [
            "",
            f"--{boundary}",
            f'Content-Type: text/{subtype}; charset="utf-8"',
            "Content-Transfer-Encoding: base64",
            "",
            base64.encodebytes(content.encode("utf-8")).decode("ascii").rstrip("\n").replace("\n", "\r\n"),
        ]
    lines += ["", f"--{boundary}--", ""]
    return "\r\n".join(lines).encode("utf-8")


def envelope_sender(sender: str) -> str:
    return parseaddr(sender)[1]


def _address_header(value: str) -> str:
    """`Name <address>` with a non-ASCII name RFC 2047-encoded (the address itself stays as is)."""
    name, address = parseaddr(_one_line(value))
    return formataddr((name, address), charset="utf-8") if address else _header_text(value)


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _header_text(value: str) -> str:
    value = _one_line(value)
    if value.isascii() and len(value) < 900:
        return value
    return Header(value, "utf-8", maxlinelen=76).encode(linesep="\r\n")
