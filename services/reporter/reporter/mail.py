"""The report as a MIME message, and its delivery to the SMTP relay with aiosmtplib."""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib
from callbacks.settings import Settings

from reporter.report import ReportData, render_html, render_text, subject

# What a failed send raises: the relay said no, could not be reached, or timed out.
SEND_ERRORS: tuple[type[BaseException], ...] = (aiosmtplib.SMTPException, OSError, TimeoutError)


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

    @property
    def sender(self) -> str:
        return self._settings.smtp_from

    async def send(self, message: EmailMessage, recipients: Sequence[str]) -> None:
        s = self._settings
        await aiosmtplib.send(
            message,
            sender=s.smtp_from,
            recipients=list(recipients),
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            start_tls=s.smtp_starttls,
            timeout=s.smtp_timeout_s,
        )
