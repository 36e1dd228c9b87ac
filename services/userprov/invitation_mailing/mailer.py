"""Sends emails over SMTP; a temporary failure (no connection, 4xx) is retried with backoff."""
from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

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
        message = build_message(self._settings.smtp_sender, smtp_address(to), email)
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
                    await self._send_once(message)
        except TemporarySmtpFailure as error:
            metrics.EMAILS.labels("failed").inc()
            return SmtpOutcome(False, f"temporary failure, retries exhausted: {error}")
        except PermanentSmtpFailure as error:
            metrics.EMAILS.labels("failed").inc()
            return SmtpOutcome(False, f"permanent failure: {error}")
        metrics.EMAILS.labels("delivered").inc()
        return SmtpOutcome(True)

    async def _send_once(self, message: EmailMessage) -> None:
        s = self._settings
        try:
            # aiosmtplib's timeout is per protocol step; this one bounds the whole try, so that
            # every try fits in the invitation's claim (Settings.mailing_claim_seconds)
            async with asyncio.timeout(s.smtp_timeout_seconds):
                await aiosmtplib.send(
                    message,
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


def build_message(sender: str, to: str, email: RenderedEmail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = email.subject
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].rstrip(">") or None)
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message
