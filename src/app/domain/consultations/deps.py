"""Dependency providers of the consultations domain."""

from __future__ import annotations

from advanced_alchemy.extensions.litestar.providers import create_service_provider
from litestar.di import Provide

from app.domain.accounts.deps import provide_users
from app.domain.consultations.bookings import BookingService
from app.domain.consultations.notes import NoteService
from app.domain.consultations.slots import SlotService
from app.domain.consultations.waitlist import WaitlistService

provide_slots = create_service_provider(SlotService)
provide_bookings = create_service_provider(BookingService)
provide_notes = create_service_provider(NoteService)
provide_waitlist = create_service_provider(WaitlistService)

PROVIDERS = {
    "users": Provide(provide_users),
    "slots": Provide(provide_slots),
    "bookings": Provide(provide_bookings),
    "notes": Provide(provide_notes),
    "waitlist": Provide(provide_waitlist),
}


def providers(*names: str) -> dict[str, Provide]:
    """Only what a controller uses: Litestar reads a body field named like a dependency as that dependency."""
    return {name: PROVIDERS[name] for name in names}
