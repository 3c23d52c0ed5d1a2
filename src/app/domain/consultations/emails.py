"""What the messages about bookings and waitlist places say (the outbox lays them out and sends them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.domain.accounts.models import User
from app.domain.consultations.events import NotificationKind
from app.domain.consultations.ics import build_ics
from app.domain.consultations.links import ActionLink, LinkAction, action_url, link_expiry
from app.domain.consultations.models import ACTIVE, Booking, BookingStatus
from app.domain.consultations.reminders import reminder_still_valid
from app.domain.notifications.emails import Detail, EmailContent, EmailRenderers, NoLongerRelevant, render_text
from app.domain.notifications.models import Notification
from app.lib.clock import utcnow
from app.lib.formatting import describe_time, local_time
from app.lib.i18n import N_
from app.lib.i18n import gettext as _

SUBJECTS = {
    NotificationKind.BOOKING_REQUESTED: N_("New booking: %(student)s on %(when)s"),
    NotificationKind.BOOKING_RECEIVED: N_("Request sent: consultation with %(professor)s on %(when)s"),
    NotificationKind.BOOKING_RESCHEDULED: N_("Moved: %(student)s's consultation, now %(when)s"),
    NotificationKind.BOOKING_CONFIRMED: N_("Confirmed: consultation with %(professor)s on %(when)s"),
    NotificationKind.BOOKING_DECLINED: N_("Declined: consultation with %(professor)s on %(when)s"),
    NotificationKind.BOOKING_CANCELLED: N_("Cancelled: consultation on %(when)s"),
    NotificationKind.SLOT_CANCELLED: N_("Cancelled by %(professor)s: consultation on %(when)s"),
    NotificationKind.BOOKING_MOVED: N_("Changed: consultation with %(professor)s, now %(when)s"),
    NotificationKind.REMINDER: N_("Reminder: consultation on %(when)s"),
    NotificationKind.WAITLIST_BOOKED: N_("Booked from the waitlist: %(professor)s on %(when)s"),
    NotificationKind.WAITLIST_OFFER: N_("A place is free for you: %(professor)s on %(when)s"),
}
ICS_METHOD = {
    NotificationKind.BOOKING_CONFIRMED: "REQUEST",
    NotificationKind.BOOKING_MOVED: "REQUEST",
    NotificationKind.BOOKING_CANCELLED: "CANCEL",
    NotificationKind.BOOKING_DECLINED: "CANCEL",
    NotificationKind.SLOT_CANCELLED: "CANCEL",
}


def _greeting(user: User) -> str:
    return user.first_name or user.username


MANAGE = N_("Manage this booking")


def booking_actions(booking: Booking, recipient: User, settings: Settings) -> list[Detail]:
    """The buttons of a message about a booking that is still ahead.

    The professor answers a pending request from the mail (Confirm, Decline: signed links) and manages the booking
    on its page (after signing in). The student's "Manage" is a signed link to a page where they can move the
    booking to another free time or cancel it, signed in or not.
    """
    now = utcnow()
    if booking.status not in ACTIVE or booking.start_time <= now:
        return []
    expires = link_expiry(booking.start_time, now)

    def signed(action: LinkAction) -> str:
        link = ActionLink(action, booking.id, recipient.id, booking.sequence, expires)
        return action_url(settings.app_url, link, settings.secret_key)

    if recipient.id == booking.student_id:
        return [Detail(_(MANAGE), _("Move it to another time, or cancel it"), url=signed(LinkAction.MANAGE))]
    actions = []
    if booking.status == BookingStatus.PENDING:
        actions = [
            Detail(_("Confirm"), _("Confirm the request"), url=signed(LinkAction.CONFIRM)),
            Detail(
                _("Decline"), _("Decline the request, with a reason for the student"), url=signed(LinkAction.DECLINE)
            ),
        ]
    return [*actions, Detail(_(MANAGE), _("Open the booking"), url=f"{settings.app_url}/bookings/{booking.id}")]


async def booking_email(session: AsyncSession, row: Notification, settings: Settings) -> EmailContent:
    """A message about one booking, in the recipient's time zone, with its details and (for changes) an .ics."""
    recipient = await session.get_one(User, row.user_id)
    booking = await session.get(Booking, row.booking_id) if row.booking_id else None
    if row.kind == NotificationKind.REMINDER and not reminder_still_valid(row, booking):
        raise NoLongerRelevant("the booking changed or was cancelled")
    if booking is None:
        raise NoLongerRelevant("the booking no longer exists")
    slot, zone = booking.slot, recipient.timezone
    when = f"{local_time(booking.start_time, zone)} ({zone})"
    reason = str(row.context.get("reason", ""))
    if row.context.get("moved_to_start") and row.context.get("moved_to_end"):
        new_start, new_end = (datetime.fromisoformat(row.context[key]) for key in ("moved_to_start", "moved_to_end"))
        reason = _("Moved to %(when)s", when=describe_time(new_start, new_end, zone))
    moved_from = ""
    if row.context.get("moved_from_start") and row.context.get("moved_from_end"):
        moved_start, moved_end = (
            datetime.fromisoformat(row.context[key]) for key in ("moved_from_start", "moved_from_end")
        )
        moved_from = describe_time(moved_start, moved_end, zone)
    context: dict[str, Any] = {
        "notification": row,
        "booking": booking,
        "slot": slot,
        "when": describe_time(booking.start_time, booking.end_time, zone),
        "moved_from": moved_from,
    }
    start, end = local_time(booking.start_time, zone, "full_time"), local_time(booking.end_time, zone, "time")
    details = [
        Detail(_("When"), f"{start}–{end} ({zone})"),
        Detail(
            _("With"), slot.professor.full_name if recipient.id == booking.student_id else booking.student.full_name
        ),
    ]
    if slot.location:
        details.append(Detail(_("Where"), slot.location))
    if slot.meeting_url:
        details.append(Detail(_("Link"), slot.meeting_url, url=slot.meeting_url))
    if booking.topic:
        details.append(Detail(_("Topic"), booking.topic))
    if reason:
        details.append(Detail(_("Reason"), reason))
    method = ICS_METHOD.get(NotificationKind(row.kind))
    actions = booking_actions(booking, recipient, settings)
    return EmailContent(
        address=recipient.email,
        greeting=_greeting(recipient),
        subject=_(
            SUBJECTS[NotificationKind(row.kind)],
            student=booking.student.full_name,
            professor=slot.professor.full_name,
            when=when,
        ),
        body=render_text("emails/booking_body.txt", **context),
        details=details,
        actions=actions,
        # A booking that is over or no longer active has nothing to act on: its page, for the record.
        link=None
        if actions
        else Detail(_("Details"), _("See the booking"), url=f"{settings.app_url}/bookings/{booking.id}"),
        ics=build_ics(booking, method, settings) if method else None,
        ics_method=method,
    )


async def waitlist_offer_email(session: AsyncSession, row: Notification, settings: Settings) -> EmailContent:
    """A held place: no booking yet, so what the message says was kept with the row when the offer was made."""
    recipient = await session.get_one(User, row.user_id)
    offer, zone = row.context, recipient.timezone
    offer_when = f"{local_time(datetime.fromisoformat(offer['start']), zone)} ({zone})"
    expires = offer.get("hold_expires_at")
    offer_until = local_time(datetime.fromisoformat(expires), zone, "day_time") if expires else ""
    context = {"notification": row, "offer_when": offer_when, "offer_until": offer_until}
    return EmailContent(
        address=recipient.email,
        greeting=_greeting(recipient),
        subject=_(SUBJECTS[NotificationKind.WAITLIST_OFFER], professor=offer.get("professor", ""), when=offer_when),
        body=render_text("emails/booking_body.txt", **context),
    )


EMAILS: EmailRenderers = {
    **{kind.value: booking_email for kind in SUBJECTS if kind != NotificationKind.WAITLIST_OFFER},
    NotificationKind.WAITLIST_OFFER.value: waitlist_offer_email,
}
