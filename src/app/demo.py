"""Demo data for `make run`: three professors, ten students, two weeks of slots, some bookings."""

from __future__ import annotations

from app.lib.providers import provide_services

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
                    }
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
                    }
                )
    lines.append(f"demo logins (password {DEMO_PASSWORD}): professors ada, alan, grace; students student1..student10")
    return lines
