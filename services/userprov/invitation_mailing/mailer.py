"""Sends one email over pooled SMTP connections, one try at a time, and says what came of it.

A temporary failure (no connection, a timeout, a dropped connection, 4xx) is for the caller to
try again later; a permanent one (5xx, an address the server cannot take) ends the email. A try
starts only if it can end before the caller's latest start plus the SMTP timeout (the claim on
the invitation): otherwise nothing is sent."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import aiosmtplib
import structlog

from contracts.email import smtp_address
from userprov.invitation_mailing import envelope
from userprov.invitation_mailing.mime import build_message, envelope_sender
from userprov.invitation_mailing.rendering import RenderedEmail
from userprov.invitation_mailing.smtp_pool import SmtpConnections, SmtpServer, TooLate, Unreachable
from userprov.runtime.circuit import Circuit
from userprov.settings import Settings

log = structlog.get_logger()


class TemporarySmtpFailure(Exception):
    pass


class PermanentSmtpFailure(Exception):
    pass


@dataclass(frozen=True)
class SmtpOutcome:
    result: Literal["delivered", "temporary", "permanent", "not_tried"]  # not_tried: given back, the try not counted
    reason: str | None = None

    @property
    def delivered(self) -> bool:
        return self.result == "delivered"


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._sender = envelope_sender(settings.smtp_sender)
        try:
            self._sender_mailbox = envelope.mailbox(self._sender)
        except ValueError as error:
            raise ValueError(f"USERPROV_SMTP_SENDER holds no address an SMTP server can take: {error}") from None
        self._connections = SmtpConnections(
            SmtpServer(
                host=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=settings.smtp_password,
                start_tls=settings.smtp_starttls,
                use_tls=settings.smtp_tls,
                ca_file=settings.smtp_ca_file,
                timeout_seconds=settings.smtp_timeout_seconds,
                local_hostname=settings.smtp_local_hostname,
            ),
            size=settings.smtp_connections + 1,  # the one beyond is kept for small work (the mailing scheduler)
            idle_seconds=settings.smtp_idle_seconds,
        )
        # while it is open the scheduler claims nothing, and a try that found no server does not count
        self.circuit = Circuit("smtp", self._connections.probe, settings.circuit_probe_seconds, settings.smtp_timeout_seconds)

    @property
    def connections_opened(self) -> int:
        return self._connections.opened

    def close(self) -> None:
        self._connections.close()

    async def send(self, to: str, email: RenderedEmail, latest_start: float) -> SmtpOutcome:
        """One try. Never raises for the email's sake: whatever goes wrong with it is its outcome,
        so that one address can never fail anything else."""
        try:
            recipient = smtp_address(to)
            await self._send_once(build_message(self._settings.smtp_sender, recipient, email), recipient, latest_start)
        except TooLate:
            return SmtpOutcome("temporary", "temporary failure: no SMTP connection was free in time")
        except Unreachable as error:
            log.info("smtp_unreachable", error_type=str(error))
            if await self.circuit.down(error):  # the probe found it down too: the email waits for the server, its tries untouched
                return SmtpOutcome("not_tried", "the SMTP server is down")
            return SmtpOutcome("temporary", f"temporary failure: the SMTP server could not be reached ({error})")
        except PermanentSmtpFailure as error:
            return SmtpOutcome("permanent", f"permanent failure: {error}")
        except TemporarySmtpFailure as error:
            return SmtpOutcome("temporary", f"temporary failure: {error}")
        except Exception as error:  # noqa: BLE001 - e.g. an address the SMTP library refuses to put on the wire
            log.exception("email_unsendable")
            return SmtpOutcome("permanent", f"permanent failure: {type(error).__name__}")
        return SmtpOutcome("delivered")

    async def _send_once(self, message: bytes, recipient: str, latest_start: float) -> None:
        try:
            # a mailbox that is not ASCII needs the server's SMTPUTF8 (else SMTPNotSupported: permanent)
            smtputf8 = not (recipient.isascii() and self._sender.isascii())
            mailbox = envelope.mailbox(recipient)
            async with self._connections.connection(self._settings.smtp_timeout_seconds, latest_start) as client:
                await envelope.send(client, self._sender_mailbox, mailbox, message, smtputf8)
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
