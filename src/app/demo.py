"""Demo data for `make run`: three professors, ten students, two weeks of slots, some bookings."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from app.domain.consultations.rules import SlotRule
from app.lib.clock import utcnow
from app.lib.errors import DomainError
from app.lib.unit_of_work import savepoint
from app.services import Services, provide_services

DEMO_PASSWORD = "office-hours-demo"
PROFESSORS = (
    ("ada", "Ada", "Lovelace", "Mathematics", "Europe/London"),
    ("alan", "Alan", "Turing", "Computer Science", "Europe/Berlin"),
    ("grace", "Grace", "Hopper", "Engineering", "America/New_York"),
)
STUDENT_NAMES = ("Mia", "Noah", "Emma", "Liam", "Sofia", "Lucas", "Hana", "Omar", "Zoe", "Ivan")


async def load_demo(only_if_empty: bool = False) -> list[str]:
    lines: list[str] = []
    async with provide_services() as services:
        users = services.users
        if only_if_empty and await users.count() > 0:
            return [f"demo data not loaded: the database has users (demo logins use password {DEMO_PASSWORD})"]
        for username, first, last, department, tz in PROFESSORS:
            if await users.find_by_login(username) is None:
                await users.register(
                    {
                        "username": username,
                        "email": f"{username}@uni.example",
                        "password": DEMO_PASSWORD,
                        "user_type": "professor",
                        "first_name": first,
                        "last_name": last,
                        "department": department,
                        "timezone": tz,
                    },
                    by_admin=True,  # made by the operator: no verification mail to the example addresses
                )
        for index, first in enumerate(STUDENT_NAMES, start=1):
            username = f"student{index}"
            if await users.find_by_login(username) is None:
                await users.register(
                    {
                        "username": username,
                        "email": f"{username}@students.uni.example",
                        "password": DEMO_PASSWORD,
                        "user_type": "student",
                        "first_name": first,
                        "last_name": "Student",
                    },
                    by_admin=True,
                )
        await _demo_slots_and_bookings(services)
    lines.append(f"demo logins (password {DEMO_PASSWORD}): professors ada, alan, grace; students student1..student10")
    return lines


async def _demo_slots_and_bookings(services: Services) -> None:
    """Two weeks of weekday slots per professor (once), and a few bookings by the demo students."""
    students = [await services.users.find_by_login(f"student{i}") for i in range(1, len(STUDENT_NAMES) + 1)]
    for index, (username, *_rest) in enumerate(PROFESSORS):
        professor = await services.users.find_by_login(username)
        if professor is None or await services.slots.count(professor_id=professor.id) > 0:
            continue
        today = utcnow().date()
        rule = SlotRule(
            start_date=today + timedelta(days=1),
            end_date=today + timedelta(days=14),
            weekdays=[0, 1, 2, 3, 4],
            day_start=("10:00", "14:00", "09:00")[index],
            day_end=("12:00", "16:00", "11:00")[index],
            duration_minutes=30,
            buffer_minutes=(0, 15, 0)[index],
            capacity=(1, 2, 3)[index],
            location=("Room 1.01", "Turing Lab", "Online")[index],
            meeting_url="https://meet.example/grace" if username == "grace" else "",
        )
        created = (await services.slots.generate_slots(professor, rule)).created
        for offset, student in enumerate(students[index * 3 : index * 3 + 3]):
            if student is not None and offset * 2 < len(created):
                with contextlib.suppress(DomainError):
                    async with savepoint(services.session):  # a refused booking is skipped, the rest goes on
                        await services.bookings.book_slot(
                            student, created[offset * 2].id, "Questions about the lecture"
                        )
