"""Waitlist API bodies."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec


class WaitlistOut(msgspec.Struct):
    id: UUID
    slot_id: UUID | None
    student_id: UUID
    professor_id: UUID
    position: int | None
    status: str
    window_start: datetime
    window_end: datetime
    offered_slot_id: UUID | None
    hold_expires_at: datetime | None


class WaitlistPage(msgspec.Struct):
    items: list[WaitlistOut]
    total: int
    limit: int
    offset: int


class WindowIn(msgspec.Struct, forbid_unknown_fields=True):
    """Wait for any free slot of a professor between start and end (at most two weeks)."""

    start: datetime
    end: datetime
