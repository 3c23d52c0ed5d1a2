"""Dependency providers of the consultations domain."""

from __future__ import annotations

from advanced_alchemy.extensions.litestar.providers import create_service_provider

from app.domain.consultations.services import BookingService, NoteService, SlotService

provide_slots = create_service_provider(SlotService)
provide_bookings = create_service_provider(BookingService)
provide_notes = create_service_provider(NoteService)
