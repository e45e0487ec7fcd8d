"""The report as a MIME message, and its delivery to the SMTP relay with aiosmtplib.

A send is bounded as a whole, not only per command (aiosmtplib's ``timeout``): a relay
that answers every command just in time could otherwise hold a send past the claim
lease, and a second replica would send the same report. ``SEND_LEASE_FRACTION`` of the
lease leaves the rest for loading the report before and marking it sent after.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib
from callbacks.settings import Settings

from reporter.report import ReportData, render_html, render_text, subject

# What a failed send raises: the relay said no, could not be reached, or timed out.
SEND_ERRORS: tuple[type[BaseException], ...] = (aiosmtplib.SMTPException, OSError, TimeoutError)
# What building a message raises when the data cannot make a valid email (a CR or LF in a
# header value, such as a title in the subject): retrying cannot help.
BUILD_ERRORS: tuple[type[Exception], ...] = (ValueError, TypeError)
# The whole send (connect, STARTTLS, login, every command) gets this share of the lease.
SEND_LEASE_FRACTION = 1 / 3
QUIT_TIMEOUT_S = 5.0


def build_message(data: ReportData, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """multipart/alternative: the plain-text part first, the HTML part preferred."""
    message = EmailMessage()
    message["Subject"] = subject(data)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    message.set_content(render_text(data))
    message.add_alternative(render_html(data), subtype="html")
    return message


class Mailer:
    """Sends through the configured relay; STARTTLS and login when configured."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.send_timeout_s = settings.reporter_claim_lease * SEND_LEASE_FRACTION

    @property
    def sender(self) -> str:
        return self._settings.smtp_from

    async def send(self, message: EmailMessage, recipients: Sequence[str]) -> None:
        """Hand ``message`` to the relay; raise one of ``SEND_ERRORS`` if it fails.

        ``TimeoutError`` when the whole send took longer than ``send_timeout_s``; the
        connection is then dropped at once (``aiosmtplib.send`` would first wait for the
        stuck relay to answer QUIT).
        """
        s = self._settings
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            start_tls=s.smtp_starttls,
            timeout=s.smtp_timeout,
        )
        try:
            async with asyncio.timeout(self.send_timeout_s):
                await client.connect()
                await client.send_message(message, sender=s.smtp_from, recipients=list(recipients))
            # The relay has the message: a QUIT that fails or dawdles changes nothing.
            with contextlib.suppress(*SEND_ERRORS):
                async with asyncio.timeout(QUIT_TIMEOUT_S):
                    await client.quit()
        finally:
            client.close()
