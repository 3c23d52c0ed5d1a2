"""Helpers shared by the tests: users made through the real service, sign-in through the real routes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from polyfactory.factories import DataclassFactory

from app.domain.accounts.models import User
from app.domain.consultations.models import Booking, ConsultationSlot
from app.services import provide_services

PASSWORD = "correct-horse-battery"


@dataclass
class NewUser:
    username: str
    email: str
    first_name: str
    last_name: str


class NewUserFactory(DataclassFactory[NewUser]):
    __check_model__ = False

    @classmethod
    def username(cls) -> str:
        return f"user{cls.__random__.randint(10**6, 10**7)}"

    @classmethod
    def email(cls) -> str:
        return f"person{cls.__random__.randint(10**6, 10**7)}@uni.example"


async def make_user(user_type: str = "student", *, verified: bool = True, **fields: Any) -> User:
    person = NewUserFactory.build()
    data = {
        "username": person.username,
        "email": person.email,
        "first_name": person.first_name[:100],
        "last_name": person.last_name[:100],
        "password": PASSWORD,
        "user_type": user_type,
        **fields,
    }
    async with provide_services() as services:
        # Made as an administrator makes accounts (address taken as verified, no verification mail), unless the
        # test is about an address still to be proven (tests/integration/test_security.py follows the link).
        return await services.users.register(data, by_admin=verified)


async def make_admin(user_type: str = "student", **fields: Any) -> User:
    """An administrator: rights no registration can give, granted as the CLI's `users create --admin` does."""
    user = await make_user(user_type, **fields)
    async with provide_services() as services:
        (await services.users.get(user.id)).is_admin = True
    user.is_admin = True
    return user


def csrf_headers(client: Any) -> dict[str, str]:
    return {"x-csrftoken": client.cookies.get("csrftoken", "")}


async def web_login(client: Any, username: str, password: str = PASSWORD) -> Any:
    await client.get("/login")
    return await client.post("/login", data={"username": username, "password": password}, headers=csrf_headers(client))


async def api_token(client: Any, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = await client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def in_hours(hours: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) + timedelta(hours=hours)


async def make_slot(
    professor: User, start: datetime | None = None, minutes: int = 30, **fields: Any
) -> ConsultationSlot:
    start = start or in_hours(48)
    async with provide_services() as services:
        return await services.slots.create_slot(
            professor, {"start_time": start, "end_time": start + timedelta(minutes=minutes), **fields}
        )


async def book(student: User, slot: ConsultationSlot, topic: str = "") -> Booking:
    async with provide_services() as services:
        return await services.bookings.book_slot(student, slot.id, topic)


def shift_into_past(database_url: str, slot_id: Any, hours: float = 1) -> None:
    """Move a slot (and its bookings) so that it started `hours` ago, as if time had passed."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE consultation_slot SET created_at = created_at - interval '30 days',"
            " end_time = now() - make_interval(secs => %s) + (end_time - start_time),"
            " start_time = now() - make_interval(secs => %s) WHERE id = %s",
            (hours * 3600, hours * 3600, slot_id),
        )
        conn.execute(
            "UPDATE booking b SET start_time = s.start_time, end_time = s.end_time FROM consultation_slot s"
            " WHERE b.slot_id = s.id AND s.id = %s",
            (slot_id,),
        )
