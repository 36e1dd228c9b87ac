"""Sends a chunk of emails over pooled SMTP connections, with a result per address.

A temporary failure (no connection, a timeout, a dropped connection, 4xx) is tried again with
backoff, up to `smtp_attempts` tries per email; a permanent one (5xx, an address the server
cannot take) ends the email at once. Every try starts early enough to end before the
caller's deadline (the claim on the invitations): an email that could not be tried to the
end in time is left out of the results, and the caller hands it to a later round."""
from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import aiosmtplib
import structlog

from contracts.email import smtp_address
from userprov.invitation_mailing.mime import build_message, envelope_sender
from userprov.invitation_mailing.rendering import RenderedEmail
from userprov.invitation_mailing.smtp_pool import SmtpConnections, SmtpServer, TooLate
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


@dataclass(frozen=True)
class OutgoingEmail:
    key: Hashable  # the caller's name for it (an invitation id)
    to: str
    email: RenderedEmail


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._sender = envelope_sender(settings.smtp_sender)
        self._connections = SmtpConnections(
            SmtpServer(
                host=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=settings.smtp_password,
                start_tls=settings.smtp_starttls,
                timeout_seconds=settings.smtp_timeout_seconds,
                local_hostname=settings.smtp_local_hostname,
            ),
            size=settings.smtp_connections,
            idle_seconds=settings.smtp_idle_seconds,
        )

    @property
    def connections_opened(self) -> int:
        return self._connections.opened

    def close(self) -> None:
        self._connections.close()

    async def send_many(
        self, emails: Sequence[OutgoingEmail], deadline: float, tries: Counter[Hashable] | None = None
    ) -> dict[Hashable, SmtpOutcome]:
        """The outcome of each email that ended before `deadline` (monotonic): delivered once the
        SMTP server accepted it; not delivered after a permanent failure or once its tries ran
        out. `tries` counts each email's tries across calls, so that rounds add up to one bound."""
        tries = tries if tries is not None else Counter()
        waiting = list(reversed(emails))
        outcomes: dict[Hashable, SmtpOutcome] = {}

        async def work() -> None:
            while waiting:
                item = waiting.pop()
                outcome = await self._send_with_retries(item, deadline, tries)
                if outcome is not None:
                    outcomes[item.key] = outcome

        workers = min(len(emails), self._settings.smtp_connections)
        await asyncio.gather(*(work() for _ in range(workers)))
        return outcomes

    async def _send_with_retries(self, item: OutgoingEmail, deadline: float, tries: Counter[Hashable]) -> SmtpOutcome | None:
        """Never raises for one email's sake: whatever goes wrong with it is its outcome, so
        one address can never fail the chunk it came in."""
        try:
            return await self._try_until_done(item, deadline, tries)
        except Exception as error:  # noqa: BLE001 - e.g. an address the SMTP library refuses to put on the wire
            log.exception("email_unsendable")
            metrics.EMAILS.labels("failed").inc()
            return SmtpOutcome(False, f"permanent failure: {type(error).__name__}")

    async def _try_until_done(self, item: OutgoingEmail, deadline: float, tries: Counter[Hashable]) -> SmtpOutcome | None:
        s = self._settings
        recipient = smtp_address(item.to)
        message = build_message(s.smtp_sender, recipient, item.email)
        while True:
            tries[item.key] += 1
            try:
                await self._send_once(message, recipient, latest_start=deadline - s.smtp_timeout_seconds)
            except TooLate:
                tries[item.key] -= 1
                return None
            except PermanentSmtpFailure as error:
                metrics.EMAILS.labels("failed").inc()
                return SmtpOutcome(False, f"permanent failure: {error}")
            except TemporarySmtpFailure as error:
                if tries[item.key] >= s.smtp_attempts:
                    metrics.EMAILS.labels("failed").inc()
                    return SmtpOutcome(False, f"temporary failure, retries exhausted: {error}")
                pause = min(s.smtp_backoff_max_seconds, s.smtp_backoff_seconds * 2 ** (tries[item.key] - 1))
                pause += random.uniform(0, s.smtp_backoff_seconds)
                if time.monotonic() + pause + s.smtp_timeout_seconds > deadline:
                    return None
                await asyncio.sleep(pause)
                continue
            metrics.EMAILS.labels("delivered").inc()
            return SmtpOutcome(True)

    async def _send_once(self, message: bytes, recipient: str, latest_start: float) -> None:
        try:
            # a mailbox that is not ASCII needs the server's SMTPUTF8 (else SMTPNotSupported: permanent)
            options = [] if recipient.isascii() and self._sender.isascii() else ["SMTPUTF8"]
            async with self._connections.connection(self._settings.smtp_timeout_seconds, latest_start) as client:
                await client.sendmail(self._sender, [recipient], message, mail_options=options)
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [r.code for r in error.recipients]
            raise _by_code(min(codes) if codes else 550, "; ".join(f"{r.code} {r.message}" for r in error.recipients)) from error
        except aiosmtplib.SMTPResponseException as error:
            raise _by_code(error.code, f"{error.code} {error.message}") from error
        except aiosmtplib.SMTPNotSupported as error:  # e.g. a non-ASCII mailbox and a server without SMTPUTF8
            raise PermanentSmtpFailure(f"not supported by the SMTP server: {error}") from error
        except ValueError as error:  # an address the SMTP library will not put on a command line
            raise PermanentSmtpFailure(f"the address cannot be sent: {error}") from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            log.info("smtp_unreachable", error_type=type(error).__name__)
            raise TemporarySmtpFailure(type(error).__name__) from error


def _by_code(code: int, detail: str) -> Exception:
    log.info("smtp_refused", code=code)
    return TemporarySmtpFailure(detail) if 400 <= code < 500 or code < 0 else PermanentSmtpFailure(detail)
