"""One SMTP mail transaction (MAIL, RCPT, DATA) for one recipient on a connection of our own.

aiosmtplib's `sendmail` parses each address with `email.utils.parseaddr` twice and normalises
the message's line endings twice; for one recipient, already validated when the person was
added, and a message already in CRLF (`mime.build_message`), that was over a quarter of the
time spent sending (py-spy of `userprov bench`: 18.7 % of the workers' samples, 13.3 % since).
The checks that keep an address from smuggling a parameter or a command onto the command line
stay (`mailbox`), and a refusal resets the envelope as `sendmail` does."""
from __future__ import annotations

import re

import aiosmtplib
from aiosmtplib import SMTPStatus

_NOT_ON_A_COMMAND_LINE = re.compile(r'[\s<>"\x00-\x1f\x7f]')


def mailbox(address: str) -> bytes:
    """`<address>` in UTF-8 (ASCII unless the server was asked for SMTPUTF8); ValueError for an
    address that could end the command early or add to it."""
    if not address or _NOT_ON_A_COMMAND_LINE.search(address):
        raise ValueError(f"an address with characters not permitted in an SMTP mailbox ({len(address)} characters)")
    return b"<" + address.encode("utf-8") + b">"


async def send(client: aiosmtplib.SMTP, sender: bytes, recipient: bytes, message: bytes, smtputf8: bool) -> None:
    """`sender` and `recipient` from `mailbox`; `message` with CRLF line endings. Raises
    aiosmtplib's SMTPSenderRefused, SMTPRecipientRefused, SMTPDataError or SMTPNotSupported
    for the server's answers, its connection errors as they come."""
    if client.is_ehlo_or_helo_needed:
        await client.ehlo()
    options = [b"SIZE=%d" % len(message)] if client.supports_extension("size") else []
    if smtputf8:
        if not client.supports_extension("smtputf8"):
            raise aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported by this server")
        options.append(b"SMTPUTF8")
    try:
        answer = await client.execute_command(b"MAIL", b"FROM:" + sender, *options)
        if answer.code != SMTPStatus.completed:
            raise aiosmtplib.SMTPSenderRefused(answer.code, answer.message, sender.decode("utf-8"))
        answer = await client.execute_command(b"RCPT", b"TO:" + recipient)
        if answer.code not in (SMTPStatus.completed, SMTPStatus.will_forward):
            raise aiosmtplib.SMTPRecipientRefused(answer.code, answer.message, recipient.decode("utf-8"))
        await client.data(message)
    except aiosmtplib.SMTPResponseException:
        try:  # the next email on this connection starts from a clean envelope
            await client.rset()
        except (ConnectionError, aiosmtplib.SMTPResponseException):
            pass
        raise
