"""The schema itself: migrations up and down, and every rule the database holds on its own."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from tests.conftest import _with_database, migrate

NOW = datetime.now(UTC)


@pytest.fixture
def empty_database(admin_database_url: str, database_url: str) -> Iterator[str]:
    name = f"oh_migrate_{secrets.token_hex(4)}"
    with psycopg.connect(admin_database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield _with_database(admin_database_url, name)
    with psycopg.connect(admin_database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {row[0] for row in rows}


def test_migrations_go_up_and_down_on_an_empty_database(empty_database: str) -> None:
    migrate(empty_database, "upgrade", "head")
    assert {
        "user_account",
        "profile",
        "consultation_slot",
        "booking",
        "consultation_note",
        "notification",
        "api_token",
        "user_session",
    } <= _tables(empty_database)
    migrate(empty_database, "downgrade", "base")
    assert _tables(empty_database) == {"alembic_version"}
    migrate(empty_database, "upgrade", "head")
    assert "booking" in _tables(empty_database)


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


def insert_user(
    db: psycopg.Connection, username: str, user_type: str = "professor", email: str | None = None
) -> uuid.UUID:
    user_id = uuid.uuid4()
    db.execute(
        "INSERT INTO user_account (id, username, email, user_type, first_name, last_name, phone_number, is_active,"
        " is_admin, timezone, created_at, updated_at) VALUES (%s, %s, %s, %s, '', '', '', true, false, 'UTC', now(), now())",
        (user_id, username, email or f"{username}@uni.example", user_type),
    )
    return user_id


def insert_slot(
    db: psycopg.Connection,
    professor: uuid.UUID,
    start: datetime,
    minutes: int = 30,
    capacity: int = 1,
    status: str = "available",
) -> uuid.UUID:
    slot_id = uuid.uuid4()
    db.execute(
        "INSERT INTO consultation_slot (id, professor_id, start_time, end_time, capacity, location, meeting_url, title,"
        " notes, status, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, '', '', '', '', %s, now(), now())",
        (slot_id, professor, start, start + timedelta(minutes=minutes), capacity, status),
    )
    return slot_id


def insert_booking(
    db: psycopg.Connection,
    slot: uuid.UUID,
    student: uuid.UUID,
    start: datetime,
    minutes: int = 30,
    status: str = "pending",
) -> uuid.UUID:
    booking_id = uuid.uuid4()
    db.execute(
        "INSERT INTO booking (id, slot_id, student_id, topic, status, start_time, end_time, cancel_reason, sequence,"
        " created_at, updated_at) VALUES (%s, %s, %s, '', %s, %s, %s, '', 0, now(), now())",
        (booking_id, slot, student, status, start, start + timedelta(minutes=minutes)),
    )
    return booking_id


START = NOW + timedelta(days=3)


def test_a_slot_must_end_after_it_starts(db: psycopg.Connection) -> None:
    professor = insert_user(db, "prof")
    with pytest.raises(psycopg.errors.CheckViolation, match="end_after_start"):
        insert_slot(db, professor, START, minutes=0)


def test_a_slot_needs_a_capacity_of_at_least_one(db: psycopg.Connection) -> None:
    professor = insert_user(db, "prof")
    with pytest.raises(psycopg.errors.CheckViolation, match="capacity_positive"):
        insert_slot(db, professor, START, capacity=0)


def test_a_slot_cannot_be_created_in_the_past(db: psycopg.Connection) -> None:
    professor = insert_user(db, "prof")
    with pytest.raises(psycopg.errors.CheckViolation, match="not_created_in_past"):
        insert_slot(db, professor, NOW - timedelta(hours=1))


def test_a_professors_slots_cannot_overlap(db: psycopg.Connection) -> None:
    professor = insert_user(db, "prof")
    insert_slot(db, professor, START, minutes=60)
    with pytest.raises(psycopg.errors.ExclusionViolation, match="consultation_slot_no_overlap"):
        insert_slot(db, professor, START + timedelta(minutes=30))


def test_a_cancelled_slot_does_not_block_its_time(db: psycopg.Connection) -> None:
    professor = insert_user(db, "prof")
    insert_slot(db, professor, START, status="cancelled")
    insert_slot(db, professor, START)


def test_back_to_back_slots_do_not_overlap(db: psycopg.Connection) -> None:
    professor = insert_user(db, "prof")
    insert_slot(db, professor, START, minutes=30)
    insert_slot(db, professor, START + timedelta(minutes=30), minutes=30)


def test_two_professors_may_hold_slots_at_the_same_time(db: psycopg.Connection) -> None:
    insert_slot(db, insert_user(db, "prof1"), START)
    insert_slot(db, insert_user(db, "prof2"), START)


def test_one_active_booking_per_slot_and_student(db: psycopg.Connection) -> None:
    professor, student = insert_user(db, "prof"), insert_user(db, "stud", "student")
    slot = insert_slot(db, professor, START, capacity=3)
    insert_booking(db, slot, student, START)
    with pytest.raises(
        psycopg.errors.IntegrityError, match=r"uq_booking_active_slot_student|booking_student_no_overlap"
    ):
        insert_booking(db, slot, student, START)


def test_a_cancelled_booking_does_not_block_rebooking(db: psycopg.Connection) -> None:
    professor, student = insert_user(db, "prof"), insert_user(db, "stud", "student")
    slot = insert_slot(db, professor, START, capacity=3)
    insert_booking(db, slot, student, START, status="cancelled")
    insert_booking(db, slot, student, START)


def test_a_student_cannot_hold_overlapping_active_bookings(db: psycopg.Connection) -> None:
    student = insert_user(db, "stud", "student")
    first = insert_slot(db, insert_user(db, "prof1"), START, minutes=60)
    second = insert_slot(db, insert_user(db, "prof2"), START + timedelta(minutes=30))
    insert_booking(db, first, student, START, minutes=60)
    with pytest.raises(psycopg.errors.ExclusionViolation, match="booking_student_no_overlap"):
        insert_booking(db, second, student, START + timedelta(minutes=30))


def test_a_rating_must_lie_between_one_and_five(db: psycopg.Connection) -> None:
    professor, student = insert_user(db, "prof"), insert_user(db, "stud", "student")
    booking = insert_booking(db, insert_slot(db, professor, START), student, START)
    with pytest.raises(psycopg.errors.CheckViolation, match="rating_range"):
        db.execute(
            "INSERT INTO consultation_note (id, booking_id, professor_notes, student_feedback, rating, feedback_signed,"
            " created_at, updated_at) VALUES (%s, %s, '', '', 6, false, now(), now())",
            (uuid.uuid4(), booking),
        )


def test_usernames_are_unique_whatever_their_case(db: psycopg.Connection) -> None:
    insert_user(db, "Ada")
    with pytest.raises(psycopg.errors.UniqueViolation, match="uq_user_account_username_lower"):
        insert_user(db, "ada", email="other@uni.example")


def test_emails_are_unique_whatever_their_case(db: psycopg.Connection) -> None:
    insert_user(db, "one", email="Ada@Uni.Example")
    with pytest.raises(psycopg.errors.UniqueViolation, match="uq_user_account_email_lower"):
        insert_user(db, "two", email="ada@uni.example")


def test_a_booking_status_outside_the_state_machine_is_refused(db: psycopg.Connection) -> None:
    professor, student = insert_user(db, "prof"), insert_user(db, "stud", "student")
    with pytest.raises(psycopg.errors.CheckViolation, match="status_valid"):
        insert_booking(db, insert_slot(db, professor, START), student, START, status="maybe")
