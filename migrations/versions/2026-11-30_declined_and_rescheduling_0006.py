"""declined bookings and rescheduling

A declined request is its own outcome (it was stored as a cancellation); professors choose whether students may
move a booking to another of their free slots.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 09:00:00

"""

import warnings
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import op
from advanced_alchemy.types import GUID, DateTimeUTC

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("downgrade", "upgrade", "schema_upgrades", "schema_downgrades", "data_upgrades", "data_downgrades")

sa.GUID = GUID
sa.DateTimeUTC = DateTimeUTC

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

OLD_STATUSES = "status IN ('pending', 'confirmed', 'cancelled', 'completed', 'no_show')"
NEW_STATUSES = "status IN ('pending', 'confirmed', 'declined', 'cancelled', 'completed', 'no_show')"


def upgrade() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        schema_upgrades()
        data_upgrades()


def downgrade() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        data_downgrades()
        schema_downgrades()


def schema_upgrades() -> None:
    op.drop_constraint(op.f("ck_booking_status_valid"), "booking", type_="check")
    op.create_check_constraint("status_valid", "booking", NEW_STATUSES)
    with op.batch_alter_table("profile", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("students_may_reschedule", sa.Boolean(), nullable=False, server_default=sa.true())
        )


def schema_downgrades() -> None:
    with op.batch_alter_table("profile", schema=None) as batch_op:
        batch_op.drop_column("students_may_reschedule")
    op.execute("UPDATE booking SET status = 'cancelled' WHERE status = 'declined'")
    op.drop_constraint(op.f("ck_booking_status_valid"), "booking", type_="check")
    op.create_check_constraint("status_valid", "booking", OLD_STATUSES)


def data_upgrades() -> None:
    """Requests the professor declined were stored as cancellations; the decline mail tells them apart."""
    op.execute(
        "UPDATE booking b SET status = 'declined' WHERE status = 'cancelled' AND EXISTS "
        "(SELECT 1 FROM notification n WHERE n.booking_id = b.id AND n.kind = 'booking_declined')"
    )


def data_downgrades() -> None:
    """The schema downgrade turns declined bookings back into cancellations."""
