"""E-mails from outbox rows: each domain says what a message of its kinds contains; this module lays it out
(subject, plain text and HTML from one layout) and builds the MIME message with an optional iCalendar part."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.notifications.models import Notification
from app.lib.i18n import use_locale
from app.lib.templates import template_environment
from app.lib.text import one_line


@dataclass(frozen=True)
class Detail:
    """One labelled line of a message ("When: ..."); with a `url`, the value links there."""

    label: str
    value: str
    url: str | None = None


@dataclass(frozen=True)
class EmailContent:
    """What a message says, before layout."""

    address: str
    greeting: str  # the recipient's name as the message addresses them
    subject: str
    body: str  # plain text; the HTML layout escapes it like any other value
    details: list[Detail] = field(default_factory=list)
    # Buttons, in order (the first is the main one): `label` is the button's text, `url` where it goes, `value` a
    # longer description for screen readers and the plain-text part.
    actions: list[Detail] = field(default_factory=list)
    link: Detail | None = None  # the one place to go from the message
    ics: bytes | None = None
    ics_method: str | None = None


class NoLongerRelevant(Exception):
    """The message would be wrong now (a reminder for a booking moved meanwhile): it is skipped, not sent."""


# Renders the row's kind: loads what the message is about and says what it contains.
EmailRenderer = Callable[[AsyncSession, Notification, Settings], Awaitable[EmailContent]]
EmailRenderers = Mapping[str, EmailRenderer]
LocaleOf = Callable[[AsyncSession, UUID], Awaitable[str]]


@dataclass(frozen=True)
class EmailBook:
    """Every kind of e-mail and what writes it (each domain supplies its own), and the language a recipient
    reads (the composition root knows where people keep it)."""

    renderers: EmailRenderers
    locale_of: LocaleOf


@dataclass(frozen=True)
class RenderedEmail:
    recipient: str
    subject: str
    text: str
    html: str
    ics: bytes | None
    ics_method: str | None


_ENV = template_environment(("html",), strings_escaped=False)


def render_text(template: str, **context: Any) -> str:
    """A plain-text template under emails/ (a message's body sentence)."""
    return _ENV.get_template(template).render(**context)


def lay_out(content: EmailContent, settings: Settings) -> RenderedEmail:
    context = {"content": content, "app_url": settings.app_url}
    return RenderedEmail(
        recipient=content.address,
        subject=content.subject,
        text=_ENV.get_template("emails/message.txt").render(**context),
        html=_ENV.get_template("emails/message.html").render(**context),
        ics=content.ics,
        ics_method=content.ics_method if content.ics is not None else None,
    )


async def render_email(session: AsyncSession, row: Notification, book: EmailBook, settings: Settings) -> RenderedEmail:
    """The message in its recipient's language: words, dates and the calendar attachment alike."""
    renderer = book.renderers.get(row.kind)
    if renderer is None:
        raise LookupError(f"no e-mail is defined for notifications of kind {row.kind!r}")
    with use_locale(await book.locale_of(session, row.user_id)):
        return lay_out(await renderer(session, row, settings), settings)


def to_message(email: RenderedEmail, settings: Settings, message_key: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = email.recipient
    # A name from elsewhere (an old row, a platform) may still hold a line break: a header never does.
    message["Subject"] = one_line(email.subject)
    message["Date"] = format_datetime(datetime.now(UTC))
    # The outbox row's dedupe key names the message: a copy sent again after a crash has the same Message-ID,
    # so mail systems recognise it as the same message.
    message["Message-ID"] = f"<{message_key.replace(':', '.')}@office-hours>"
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    if email.ics is not None and email.ics_method is not None:
        # Bytes keep iCalendar's CRLF line ends; the charset parameter lets calendar apps read non-ASCII names.
        message.add_attachment(
            email.ics,
            maintype="text",
            subtype="calendar",
            filename="consultation.ics",
            params={"method": email.ics_method, "charset": "utf-8"},
        )
    return message
