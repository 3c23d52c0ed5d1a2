"""Helpers shared by the tests: users made through the real service, sign-in through the real routes."""

from __future__ import annotations

from typing import Any

from polyfactory.factories import DataclassFactory
from dataclasses import dataclass

from app.domain.accounts.models import User
from app.lib.providers import provide_services

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


async def make_user(user_type: str = "student", **fields: Any) -> User:
    person = NewUserFactory.build()
    data = {
        "username": person.username, "email": person.email, "first_name": person.first_name[:100],
        "last_name": person.last_name[:100], "password": PASSWORD, "user_type": user_type, **fields,
    }
    async with provide_services() as services:
        return await services.users.register(data)


def csrf_headers(client: Any) -> dict[str, str]:
    return {"x-csrftoken": client.cookies.get("csrftoken", "")}


async def web_login(client: Any, username: str, password: str = PASSWORD) -> Any:
    await client.get("/login")
    return await client.post(
        "/login", data={"username": username, "password": password}, headers=csrf_headers(client)
    )


async def api_token(client: Any, username: str, password: str = PASSWORD) -> dict[str, str]:
    response = await client.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}
