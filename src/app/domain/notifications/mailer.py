"""Sending mail over SMTP with the SMTP_* settings (none, STARTTLS or implicit TLS)."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from app.config import Settings

SMTP_TIMEOUT_SECONDS = 20


class MailNotConfigured(RuntimeError):
    """SMTP_HOST is unset: mail stays in the outbox (and /dev/mail shows it in development)."""


async def send_message(message: EmailMessage, settings: Settings) -> None:
    if not settings.smtp_host:
        raise MailNotConfigured("SMTP_HOST is not set")
    await aiosmtplib.send(
        message,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password,
        use_tls=settings.smtp_tls == "tls",
        start_tls=settings.smtp_tls == "starttls",
        timeout=SMTP_TIMEOUT_SECONDS,
    )
