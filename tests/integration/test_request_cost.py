"""What one request costs the database: a signed-in page is one transaction of a few round trips (issue 17).

Round trips are counted on the app's engine: each statement (its prepared form is cached after the first use, so
it is one exchange), each BEGIN and each COMMIT/ROLLBACK, and a pre-ping on checkout (asyncpg's ping is three:
BEGIN, ";", ROLLBACK). Every figure is taken on the second of two identical requests, with warm caches.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import event

from app.lib.database import get_alchemy_config
from tests.helpers import api_token, book, in_hours, make_slot, make_user, web_login

# BEGIN, the web session with its user, the professor with their week, COMMIT (issue 17 asked for at most five).
MOST_ROUND_TRIPS_PER_PAGE = 4


@dataclass
class Traffic:
    statements: list[str] = field(default_factory=list)
    begins: int = 0
    ends: int = 0
    pings: int = 0

    @property
    def round_trips(self) -> int:
        return len(self.statements) + self.begins + self.ends + 3 * self.pings

    def __repr__(self) -> str:
        shown = "\n".join(
            "  " + re.sub(r"^SELECT .*? FROM ", "SELECT … FROM ", " ".join(s.split()))[:300] for s in self.statements
        )
        return f"{self.begins} begin(s), {self.ends} end(s), {self.pings} ping(s), statements:\n{shown}"


@contextmanager
def database_traffic() -> Iterator[Traffic]:
    engine = get_alchemy_config().get_engine().sync_engine
    traffic = Traffic()

    def statement(conn: Any, cursor: Any, text: str, *args: Any) -> None:
        traffic.statements.append(text)

    def begin(conn: Any) -> None:
        traffic.begins += 1

    def end(conn: Any) -> None:
        traffic.ends += 1

    def ping(*args: Any) -> None:
        traffic.pings += 1

    listeners = [("before_cursor_execute", statement), ("begin", begin), ("commit", end), ("rollback", end)]
    for name, listener in listeners:
        event.listen(engine, name, listener)
    dialect = engine.dialect
    original_ping = dialect.do_ping

    def counted_ping(dbapi_connection: Any) -> bool:
        ping()
        return bool(original_ping(dbapi_connection))

    dialect.do_ping = counted_ping  # type: ignore[method-assign]
    try:
        yield traffic
    finally:
        dialect.do_ping = original_ping  # type: ignore[method-assign]
        for name, listener in listeners:
            event.remove(engine, name, listener)


async def twice(client: httpx.AsyncClient, path: str, **options: Any) -> tuple[httpx.Response, Traffic]:
    await client.get(path, **options)
    with database_traffic() as traffic:
        response = await client.get(path, **options)
    print(repr(traffic))  # shown when a test fails
    return response, traffic


async def a_week_of_slots() -> tuple[Any, Any, list[Any]]:
    professor = await make_user("professor")
    student = await make_user()
    slots = [await make_slot(professor, in_hours(48 + 2 * i)) for i in range(5)]
    await book(student, slots[0])
    return professor, student, slots


async def test_a_signed_in_grid_page_is_one_transaction_of_at_most_four_round_trips(
    client: httpx.AsyncClient,
) -> None:
    professor, student, slots = await a_week_of_slots()
    await web_login(client, student.username)

    response, traffic = await twice(client, f"/professors/{professor.id}")

    assert response.status_code == 200
    assert f'id="slot-{slots[-1].id}"' in response.text
    assert traffic.begins == 1, traffic
    assert traffic.pings == 0, traffic
    assert traffic.round_trips <= MOST_ROUND_TRIPS_PER_PAGE, traffic


async def test_the_grid_fragment_costs_no_more_than_the_page(client: httpx.AsyncClient) -> None:
    professor, student, slots = await a_week_of_slots()
    await web_login(client, student.username)

    response, traffic = await twice(client, f"/professors/{professor.id}", headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert f'id="slot-{slots[-1].id}"' in response.text
    assert traffic.begins == 1, traffic
    assert traffic.round_trips <= MOST_ROUND_TRIPS_PER_PAGE, traffic


async def test_a_signed_in_page_counts_no_rows_it_does_not_show(client: httpx.AsyncClient) -> None:
    professor, student, _slots = await a_week_of_slots()
    await web_login(client, student.username)

    _response, traffic = await twice(client, f"/professors/{professor.id}")

    # Places are counted inside the grid's one query; no statement of its own only counts rows.
    assert not [s for s in traffic.statements if s.lstrip().lower().startswith("select count(")], traffic


async def test_an_api_request_finds_its_token_and_its_user_in_one_round_trip(client: httpx.AsyncClient) -> None:
    _professor, student, _slots = await a_week_of_slots()
    headers = await api_token(client, student.username)

    response, traffic = await twice(client, "/api/v1/me", headers=headers)

    assert response.status_code == 200
    assert response.json()["username"] == student.username
    lookups = [s for s in traffic.statements if "api_token" in s]
    assert len(lookups) == 1, traffic
    assert "user_account" in lookups[0], traffic
    assert traffic.begins == 1, traffic
    assert traffic.pings == 0, traffic


async def test_the_api_slot_list_is_one_transaction_without_a_ping(client: httpx.AsyncClient) -> None:
    professor, student, _slots = await a_week_of_slots()
    headers = await api_token(client, student.username)

    response, traffic = await twice(client, f"/api/v1/slots?professor_id={professor.id}", headers=headers)

    assert response.status_code == 200
    assert response.json()["total"] == 5
    assert [slot["booked_count"] for slot in response.json()["items"]] == [1, 0, 0, 0, 0]
    assert traffic.begins == 1, traffic
    assert traffic.pings == 0, traffic
    assert traffic.round_trips <= MOST_ROUND_TRIPS_PER_PAGE, traffic


async def test_the_health_check_asks_the_database_one_question_outside_a_transaction(
    client: httpx.AsyncClient,
) -> None:
    response, traffic = await twice(client, "/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "queue": "ok"}
    assert traffic.statements == ["SELECT 1"], traffic
    assert traffic.pings == 0, traffic
    assert "set-cookie" not in response.headers  # no CSRF token, no session: nothing here takes a form


async def test_an_api_booking_is_one_transaction_of_at_most_ten_round_trips(client: httpx.AsyncClient) -> None:
    """Most of them under the slot's lock, so each one saved lets the next student of a rush in sooner: the slot comes
    with its courses, both messages are one statement, and no savepoint is made (the request ends on a refusal). (Ten
    with the unlocked look at whether the slot is full, which answers most of a rush in four, see the next test.)"""
    professor = await make_user("professor", auto_confirm=True)
    warm_up, slot = [await make_slot(professor, in_hours(48 + 2 * i), capacity=5) for i in range(2)]
    warm_up_student = await make_user()
    await client.post(f"/api/v1/slots/{warm_up.id}/bookings", headers=await api_token(client, warm_up_student.username))
    headers = await api_token(client, (await make_user()).username)

    with database_traffic() as traffic:
        response = await client.post(f"/api/v1/slots/{slot.id}/bookings", headers=headers)
    print(repr(traffic))

    assert response.status_code == 201
    assert response.json()["status"] == "confirmed"
    assert traffic.begins == 1, traffic
    assert traffic.pings == 0, traffic
    assert not any("SAVEPOINT" in statement for statement in traffic.statements), traffic
    assert traffic.round_trips <= 10, traffic


async def test_a_booking_refused_because_the_slot_is_full_takes_four_round_trips_and_no_lock(
    client: httpx.AsyncClient,
) -> None:
    slot = await make_slot(await make_user("professor", auto_confirm=True), capacity=1)
    await client.post(
        f"/api/v1/slots/{slot.id}/bookings", headers=await api_token(client, (await make_user()).username)
    )
    headers = await api_token(client, (await make_user()).username)
    await client.get("/api/v1/bookings", headers=headers)  # the token's first use is noted once (a write)

    with database_traffic() as traffic:
        response = await client.post(f"/api/v1/slots/{slot.id}/bookings", headers=headers)

    assert response.status_code == 409
    assert response.json()["detail"] == "This slot is full."
    assert traffic.begins == 1, traffic
    assert traffic.round_trips == 4, traffic  # BEGIN, the token and its user, the look at the slot, COMMIT
    assert not any("FOR UPDATE" in statement for statement in traffic.statements), traffic
