"""Every route of the app, read from its route table, against who may call it.

A new route fails `test_every_route_is_classified` until it is added to ACCESS below, so none can slip out
of the checks. Ownership (someone else's slot, booking or entry is a 404) is covered per domain in
test_access_matrix.py and test_waitlist.py; here each route is checked by role.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.helpers import api_token, csrf_headers, make_admin, make_user, web_login

PUBLIC, USER, STUDENT, PROFESSOR, ADMIN = "public", "user", "student", "professor", "admin"
# (method, path template) -> who may call it. Paths are Litestar's templates.
ACCESS: dict[tuple[str, str], str] = {
    ("GET", "/"): PUBLIC,
    ("GET", "/health"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,  # its own bearer token (METRICS_TOKEN): tests/integration/test_metrics.py
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): PUBLIC,
    ("POST", "/language"): PUBLIC,
    ("GET", "/account/unlock"): PUBLIC,  # the mailed, signed link is the key
    ("POST", "/account/unlock"): PUBLIC,
    ("GET", "/account/verify"): PUBLIC,  # the mailed, signed, single-use link is the key
    ("POST", "/account/verify"): PUBLIC,
    ("GET", "/register"): PUBLIC,
    ("POST", "/register"): PUBLIC,
    ("GET", "/settings"): USER,
    ("POST", "/settings/profile"): USER,
    ("POST", "/settings/password"): USER,
    ("POST", "/settings/verification"): USER,
    ("POST", "/settings/picture"): USER,
    ("POST", "/settings/calendar-feed"): USER,
    ("POST", "/settings/timezone"): USER,
    ("POST", "/settings/google/unlink"): USER,
    ("POST", "/settings/calendar/disconnect"): USER,
    ("POST", "/settings/tokens"): USER,
    ("POST", "/settings/tokens/{token_id:uuid}/revoke"): USER,
    ("POST", "/settings/sign-out-everywhere"): USER,
    ("GET", "/settings/data"): USER,
    ("POST", "/settings/data/export"): USER,
    ("GET", "/settings/data/download"): USER,
    ("POST", "/settings/data/delete"): USER,
    ("GET", "/auth/google"): PUBLIC,
    ("GET", "/auth/google/callback"): PUBLIC,
    ("GET", "/auth/google/choose"): PUBLIC,
    ("POST", "/auth/google/complete"): PUBLIC,
    ("POST", "/api/v1/auth/register"): PUBLIC,
    ("POST", "/api/v1/auth/token"): PUBLIC,
    ("POST", "/api/v1/auth/logout"): USER,
    ("GET", "/api/v1/me"): USER,
    ("PATCH", "/api/v1/me"): USER,
    ("POST", "/api/v1/me/password"): USER,
    ("GET", "/api/v1/me/tokens"): USER,
    ("GET", "/api/v1/me/export"): USER,
    ("DELETE", "/api/v1/me/tokens/{token_id:uuid}"): USER,
    ("GET", "/api/v1/professors"): USER,
    ("GET", "/api/v1/slots"): USER,
    ("POST", "/api/v1/slots"): PROFESSOR,
    ("POST", "/api/v1/slots/bulk"): PROFESSOR,
    ("GET", "/api/v1/slots/{slot_id:uuid}"): USER,
    ("PATCH", "/api/v1/slots/{slot_id:uuid}"): PROFESSOR,
    ("DELETE", "/api/v1/slots/{slot_id:uuid}"): PROFESSOR,
    ("POST", "/api/v1/slots/{slot_id:uuid}/bookings"): STUDENT,
    ("POST", "/api/v1/slots/{slot_id:uuid}/waitlist"): STUDENT,
    ("DELETE", "/api/v1/slots/{slot_id:uuid}/waitlist"): STUDENT,
    ("POST", "/api/v1/professors/{professor_id:uuid}/waitlist"): STUDENT,
    ("GET", "/api/v1/waitlist"): STUDENT,
    ("POST", "/api/v1/waitlist/{entry_id:uuid}/accept"): STUDENT,
    ("POST", "/api/v1/waitlist/{entry_id:uuid}/decline"): STUDENT,
    ("GET", "/api/v1/bookings"): USER,
    ("GET", "/api/v1/bookings/{booking_id:uuid}"): USER,
    ("POST", "/api/v1/bookings/{booking_id:uuid}/confirm"): PROFESSOR,
    ("POST", "/api/v1/bookings/{booking_id:uuid}/decline"): PROFESSOR,
    ("POST", "/api/v1/bookings/{booking_id:uuid}/cancel"): USER,
    ("POST", "/api/v1/bookings/{booking_id:uuid}/complete"): PROFESSOR,
    ("POST", "/api/v1/bookings/{booking_id:uuid}/no-show"): PROFESSOR,
    ("POST", "/api/v1/bookings/{booking_id:uuid}/reschedule"): STUDENT,
    ("GET", "/api/v1/bookings/{booking_id:uuid}/note"): USER,
    ("PUT", "/api/v1/bookings/{booking_id:uuid}/note"): USER,
    ("GET", "/api/v1/stats"): PROFESSOR,
    ("GET", "/professors"): USER,
    ("GET", "/professors/{professor_id:uuid}"): USER,
    ("GET", "/professors/{professor_id:uuid}/events"): USER,
    ("GET", "/slots/{slot_id:uuid}/book"): STUDENT,
    ("POST", "/slots/{slot_id:uuid}/book"): STUDENT,
    ("POST", "/slots/{slot_id:uuid}/waitlist"): STUDENT,
    ("POST", "/slots/{slot_id:uuid}/waitlist/leave"): STUDENT,
    ("POST", "/slots/{slot_id:uuid}/waitlist/accept"): STUDENT,
    ("GET", "/waitlist/{entry_id:uuid}/accept"): STUDENT,
    ("POST", "/waitlist/{entry_id:uuid}/accept"): STUDENT,
    ("GET", "/waitlist"): STUDENT,
    ("POST", "/waitlist/{entry_id:uuid}/pass"): STUDENT,
    ("POST", "/waitlist/{entry_id:uuid}/leave"): STUDENT,
    ("GET", "/bookings"): USER,
    ("GET", "/bookings/{booking_id:uuid}"): USER,
    ("POST", "/bookings/{booking_id:uuid}/cancel"): USER,
    ("POST", "/bookings/{booking_id:uuid}/feedback"): STUDENT,
    ("POST", "/bookings/{booking_id:uuid}/cancellation"): STUDENT,
    ("POST", "/bookings/{booking_id:uuid}/reschedule"): STUDENT,
    ("POST", "/bookings/{booking_id:uuid}/notes"): PROFESSOR,
    ("GET", "/actions/{token:str}"): PUBLIC,  # the signed link is the key (tests/integration/test_email_actions.py)
    ("POST", "/actions/{token:str}"): PUBLIC,
    ("GET", "/dashboard"): PROFESSOR,
    ("GET", "/dashboard/events"): PROFESSOR,
    ("GET", "/dashboard/stats"): PROFESSOR,
    ("GET", "/dashboard/export.csv"): PROFESSOR,
    ("GET", "/dashboard/slots-table"): PROFESSOR,
    ("POST", "/dashboard/slots"): PROFESSOR,
    ("POST", "/dashboard/slots/bulk"): PROFESSOR,
    ("POST", "/dashboard/slots/preview"): PROFESSOR,
    ("GET", "/dashboard/slots/{slot_id:uuid}/row"): PROFESSOR,
    ("GET", "/dashboard/slots/{slot_id:uuid}/edit"): PROFESSOR,
    ("POST", "/dashboard/slots/{slot_id:uuid}"): PROFESSOR,
    ("POST", "/dashboard/slots/{slot_id:uuid}/cancel"): PROFESSOR,
    ("POST", "/dashboard/bookings/{booking_id:uuid}/confirm"): PROFESSOR,
    ("POST", "/dashboard/bookings/{booking_id:uuid}/cancel"): PROFESSOR,
    ("POST", "/dashboard/bookings/{booking_id:uuid}/{outcome:str}"): PROFESSOR,
    ("GET", "/admin"): ADMIN,
    ("GET", "/admin/users/{user_id:uuid}"): ADMIN,
    ("POST", "/admin/users/{user_id:uuid}/role"): ADMIN,
    ("POST", "/admin/users/{user_id:uuid}/deactivate"): ADMIN,
    ("POST", "/admin/users/{user_id:uuid}/reactivate"): ADMIN,
    ("POST", "/admin/users/{user_id:uuid}/erase"): ADMIN,
    ("GET", "/admin/audit"): ADMIN,
    ("GET", "/admin/notifications"): ADMIN,
    ("POST", "/admin/notifications/resend"): ADMIN,
    ("GET", "/admin/lti"): ADMIN,
    ("POST", "/admin/lti/{platform_id:uuid}/approve"): ADMIN,
    ("POST", "/admin/lti/{platform_id:uuid}/remove"): ADMIN,
    ("GET", "/dev/mail"): ADMIN,  # development only (404 in production)
    ("GET", "/dev/mail/{notification_id:uuid}"): ADMIN,
    ("GET", "/calendar/{feed_name:str}"): PUBLIC,  # the unguessable link is the key
    ("GET", "/static/{file_path:path}"): PUBLIC,
    ("GET", "/media/{file_path:path}"): PUBLIC,
    ("GET", "/schema"): PUBLIC,
    ("GET", "/schema/scalar"): PUBLIC,
    ("GET", "/schema/openapi.json"): PUBLIC,
    ("GET", "/schema/{path:str}"): PUBLIC,
}
# LTI and embed routes authenticate by launch, token or framed session: their checks live in test_lti.py.
OWN_CHECKS = re.compile(r"^/(lti|embed)/")


def routes(app: Any) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        for method in sorted(getattr(route, "methods", set()) - {"HEAD", "OPTIONS"}):
            found.append((method, route.path))
    return found


def test_every_route_is_classified(app: Any) -> None:
    unclassified = [r for r in routes(app) if r not in ACCESS and not OWN_CHECKS.match(r[1])]
    assert unclassified == []


def concrete(path: str) -> str:
    """A path to call: any id (the role check comes before the object is looked up)."""
    path = re.sub(r"\{[a-z_]+:uuid\}", str(uuid.uuid4()), path)
    return re.sub(r"\{outcome:str\}", "complete", path)


def guarded(role: str) -> list[tuple[str, str]]:
    return [key for key, who in ACCESS.items() if who == role]


async def call(client: Any, method: str, path: str, headers: dict[str, str]) -> Any:
    return await client.request(method, concrete(path), headers=headers)


def denied_to_anonymous(path: str, response: Any) -> bool:
    if path.startswith("/api/"):
        return bool(response.status_code == 401)
    return response.status_code == 303 and response.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize(("method", "path"), [key for key, who in ACCESS.items() if who != PUBLIC])
async def test_anonymous_callers_are_turned_away(client: Any, method: str, path: str) -> None:
    await client.get("/login")  # a CSRF cookie, so unsafe web requests reach the sign-in check
    response = await call(client, method, path, csrf_headers(client))
    assert denied_to_anonymous(path, response), (response.status_code, response.headers.get("location"))


async def signed_in_headers(client: Any, user: Any, path: str) -> dict[str, str]:
    if path.startswith("/api/"):
        return await api_token(client, user.username)
    await web_login(client, user.username)
    return {**csrf_headers(client), "HX-Request": "true"}


@pytest.mark.parametrize(("method", "path"), guarded(PROFESSOR))
async def test_students_get_403_on_professor_routes(client: Any, method: str, path: str) -> None:
    headers = await signed_in_headers(client, await make_user("student"), path)
    assert (await call(client, method, path, headers)).status_code == 403


@pytest.mark.parametrize(("method", "path"), guarded(STUDENT))
async def test_professors_get_403_on_student_routes(client: Any, method: str, path: str) -> None:
    headers = await signed_in_headers(client, await make_user("professor"), path)
    assert (await call(client, method, path, headers)).status_code == 403


@pytest.mark.parametrize(("method", "path"), guarded(ADMIN))
@pytest.mark.parametrize("role", ["student", "professor"])
async def test_only_admins_reach_admin_routes(client: Any, method: str, path: str, role: str) -> None:
    headers = await signed_in_headers(client, await make_user(role), path)
    assert (await call(client, method, path, headers)).status_code == 403


@pytest.mark.parametrize(("method", "path"), guarded(ADMIN))
async def test_admins_reach_admin_routes(client: Any, database_url: str, method: str, path: str) -> None:
    admin = await make_admin("professor")
    headers = await signed_in_headers(client, admin, path)
    # A path naming an object gets a random id here: "not found" shows the admin got past the guard.
    reached = (200, 303, 404) if "{" in path else (200, 303)
    assert (await call(client, method, path, headers)).status_code in reached
