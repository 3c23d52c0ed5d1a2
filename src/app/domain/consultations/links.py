"""Signed links in booking e-mails: confirm, decline, cancel, and the page to manage (move or cancel) a booking.

A link names one action on one booking for one person, and the version of the booking it was made for (its
`sequence`). It is signed with HMAC-SHA256 under SECRET_KEY, so it cannot be forged or changed, and it:

- expires at the booking's start, and at the latest MAX_LINK_AGE after the mail was made;
- works once: every change to a booking increments its `sequence` (confirm and decline also end `pending`), so the
  link stops matching;
- never acts on a GET (a mail scanner may fetch it): the page it opens has one button that posts;
- is refused while someone else is signed in; signed out, the link itself is the authority.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from app.lib.errors import ConflictError, DomainError, Forbidden, NotFound
from app.lib.i18n import gettext as _

MAX_LINK_AGE = timedelta(days=14)
_VERSION = 1
# version, action, booking id, recipient id, sequence, expiry (Unix seconds)
_LAYOUT = struct.Struct(">BB16s16sIQ")
_PURPOSE = b"office-hours/email-action/v1\x00"  # the same key signs other things: this names what is signed


class LinkAction(enum.StrEnum):
    CONFIRM = "confirm"  # the professor confirms a pending request
    DECLINE = "decline"  # the professor declines a pending request, with a reason
    CANCEL = "cancel"  # the student cancels
    MANAGE = "manage"  # the student's page for the booking: move it to another free slot, or go on to cancel


_CODES = {action: code for code, action in enumerate(LinkAction, start=1)}
_ACTIONS = {code: action for action, code in _CODES.items()}
# Who a link of each action is for: the booking's professor or its student.
PROFESSOR_ACTIONS = frozenset({LinkAction.CONFIRM, LinkAction.DECLINE})


class LinkInvalid(NotFound):
    def __init__(self) -> None:
        super().__init__(_("This link is not valid. Check that it was copied in full from the e-mail."))


class LinkForAnotherAccount(Forbidden):
    def __init__(self) -> None:
        super().__init__(_("This link is for another account. Sign out first, or open the link in a private window."))


class LinkExpired(DomainError):
    status_code = 410

    def __init__(self) -> None:
        super().__init__(_("This link has expired. Open the booking from your list of bookings instead."))


class LinkUsed(ConflictError):
    def __init__(self) -> None:
        super().__init__(
            _("This link has been used already, or the booking changed since the e-mail was sent; nothing was changed.")
        )


@dataclass(frozen=True)
class ActionLink:
    action: LinkAction
    booking_id: UUID
    user_id: UUID  # the person the mail was sent to: the only one the link acts for
    sequence: int  # the booking's version when the link was made
    expires_at: datetime

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


def link_expiry(start_time: datetime, now: datetime) -> datetime:
    """At the consultation's start, and at most MAX_LINK_AGE from now (whole seconds, as the link carries it)."""
    return min(start_time, now + MAX_LINK_AGE).astimezone(UTC).replace(microsecond=0)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(payload: bytes, secret: str) -> bytes:
    return hmac.new(secret.encode(), _PURPOSE + payload, hashlib.sha256).digest()


def sign(link: ActionLink, secret: str) -> str:
    """The token of a link: its fields and their signature, URL-safe."""
    payload = _LAYOUT.pack(
        _VERSION,
        _CODES[link.action],
        link.booking_id.bytes,
        link.user_id.bytes,
        link.sequence,
        int(link.expires_at.timestamp()),
    )
    return f"{_b64(payload)}.{_b64(_signature(payload, secret))}"


def read(token: str, secret: str) -> ActionLink:
    """The link a token stands for; LinkInvalid when it was not signed by us (or was cut or changed)."""
    encoded, _, signature = token.partition(".")
    try:
        payload, given = _unb64(encoded), _unb64(signature)
    except (binascii.Error, ValueError) as exc:
        raise LinkInvalid() from exc
    if not hmac.compare_digest(given, _signature(payload, secret)) or len(payload) != _LAYOUT.size:
        raise LinkInvalid()
    version, code, booking_id, user_id, sequence, expires = _LAYOUT.unpack(payload)
    if version != _VERSION or code not in _ACTIONS:
        raise LinkInvalid()
    return ActionLink(
        action=_ACTIONS[code],
        booking_id=UUID(bytes=booking_id),
        user_id=UUID(bytes=user_id),
        sequence=sequence,
        expires_at=datetime.fromtimestamp(expires, UTC),
    )


def action_url(app_url: str, link: ActionLink, secret: str) -> str:
    return f"{app_url}/actions/{sign(link, secret)}"
