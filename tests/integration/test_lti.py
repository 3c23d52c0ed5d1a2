"""LTI 1.3 launches from a simulated LMS (its own keys, JWKS and OIDC endpoint on loopback) into the in-process app.

The test client stands in for the browser inside the LMS frame: it sends `Sec-Fetch-Dest: iframe` as a browser
does for a framed navigation, follows no redirects by itself, and talks to the app over https:// so that the
Secure cookies of the embed flow come back to it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest

from app.config import get_settings
from app.domain.lti.keys import ToolKeyService
from app.lib.jwks import jwks_cache
from app.services import provide_services
from tests.conftest import ROOT, free_port
from tests.fake_lms import (
    CLIENT_ID,
    FakeLms,
    FakeLmsServer,
    Person,
    instructor,
    learner,
    new_key,
    register_platform,
)
from tests.helpers import make_user

TOOL = "https://testserver.local"
FRAMED = {"sec-fetch-dest": "iframe"}
FORM_FIELD = re.compile(r'name="([^"]+)" value="([^"]*)"')


@pytest.fixture
async def lms(database_url: str) -> AsyncIterator[FakeLms]:
    """A platform of its own per test, registered with the tool. The OS may hand a later test the same port, so
    the tool's JWKS cache (per process, keyed by URL) starts empty for each."""
    jwks_cache.forget()
    server = FakeLmsServer(free_port(), get_settings().app_url)
    platform = server.start()
    await register_platform(platform)
    yield platform
    server.stop()


@pytest.fixture
def refusals() -> Iterator[list[str]]:
    """What the tool logs about refused launches."""
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("app.domain.lti.deps")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


async def login(client: httpx.AsyncClient, lms: FakeLms, login_hint: str, **extra: str) -> httpx.Response:
    params = {
        "iss": lms.issuer,
        "login_hint": login_hint,
        "target_link_uri": f"{get_settings().app_url}/lti/launch",
        "client_id": lms.client_id,
        "lti_deployment_id": lms.deployment_id,
        **extra,
    }
    return await client.get(f"{TOOL}/lti/login", params=params, headers=FRAMED)


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


async def authenticate(location: str) -> dict[str, str]:
    """The platform's OIDC endpoint, as the browser meets it: a form that posts the id_token back to the tool."""
    async with httpx.AsyncClient() as browser:
        page = await browser.get(location)
    assert page.status_code == 200, page.text
    return {name: unescape(value) for name, value in FORM_FIELD.findall(page.text)}


async def launch_as(client: httpx.AsyncClient, lms: FakeLms, person: Person) -> httpx.Response:
    """The whole launch: login at the tool, authentication at the platform, the form post back to the tool."""
    lms.people[person.sub] = person
    started = await login(client, lms, person.sub)
    assert started.status_code == 302, started.text
    form = await authenticate(started.headers["location"])
    return await client.post(f"{TOOL}/lti/launch", data=form, headers=FRAMED)


async def post_token(client: httpx.AsyncClient, lms: FakeLms, person: Person, **token: Any) -> httpx.Response:
    """A launch whose id_token the test makes itself (after a real login, so state cookie and nonce are genuine)."""
    started = await login(client, lms, person.sub)
    state, nonce = query_of(started.headers["location"])["state"], query_of(started.headers["location"])["nonce"]
    id_token = lms.id_token(person, token.pop("nonce", nonce), **token)
    return await client.post(f"{TOOL}/lti/launch", data={"id_token": id_token, "state": state}, headers=FRAMED)


def session_cookies(response: httpx.Response) -> list[str]:
    return [value for value in response.headers.get_list("set-cookie") if value.startswith("session=")]


def lti_accounts(database_url: str, issuer: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT u.user_type, u.email, u.first_name, i.subject FROM lti_identity i"
            " JOIN user_account u ON u.id = i.user_id WHERE i.issuer = %s ORDER BY i.subject",
            (issuer,),
        ).fetchall()


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`app lti ...` in a child process, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "app", "lti", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )


# The login (OIDC step 1) ---------------------------------------------------------------------------------------


async def test_the_login_sends_the_browser_to_the_platform_with_the_oidc_request(client: Any, lms: FakeLms) -> None:
    response = await login(client, lms, "lms-learner-1", lti_message_hint="link-42")
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(f"{lms.auth_url}?")
    query = query_of(location)
    state, nonce = query.pop("state"), query.pop("nonce")
    assert len(state) >= 32
    assert len(nonce) == 64
    assert query == {
        "response_type": "id_token",
        "response_mode": "form_post",
        "scope": "openid",
        "prompt": "none",
        "client_id": CLIENT_ID,
        "redirect_uri": f"{get_settings().app_url}/lti/launch",
        "login_hint": "lms-learner-1",
        "lti_message_hint": "link-42",
    }


async def test_the_login_sets_a_state_cookie_a_framed_cross_site_post_brings_back(client: Any, lms: FakeLms) -> None:
    response = await login(client, lms, "lms-learner-1")
    state = query_of(response.headers["location"])["state"]
    assert response.headers.get_list("set-cookie") == [
        f"lti_state_{state}=1; HttpOnly; Max-Age=600; Path=/lti/; SameSite=None; Secure; Partitioned"
    ]


async def test_the_login_also_accepts_a_form_post(client: Any, lms: FakeLms) -> None:
    form = {
        "iss": lms.issuer,
        "login_hint": "lms-learner-1",
        "target_link_uri": f"{get_settings().app_url}/lti/launch",
        "client_id": CLIENT_ID,
    }
    response = await client.post(f"{TOOL}/lti/login", data=form, headers=FRAMED)
    assert response.status_code == 302
    assert query_of(response.headers["location"])["login_hint"] == "lms-learner-1"


async def test_a_login_from_an_unknown_issuer_is_refused_in_the_frame(client: Any, lms: FakeLms) -> None:
    response = await client.get(
        f"{TOOL}/lti/login",
        params={"iss": "https://lms.elsewhere.example", "login_hint": "x", "target_link_uri": f"{TOOL}/lti/launch"},
        headers=FRAMED,
    )
    assert response.status_code == 400
    assert "Unknown platform: no registration for issuer &#39;https://lms.elsewhere.example&#39;." in response.text


async def test_a_login_offering_platform_storage_stores_state_and_nonce_there_first(client: Any, lms: FakeLms) -> None:
    response = await login(client, lms, "lms-learner-1", lti_storage_target="post_message_forwarding")
    assert response.status_code == 200
    page = response.text
    assert 'data-mode="login" data-target="post_message_forwarding"' in page
    assert f'data-origin="{lms.issuer}"' in page
    assert '<script src="/static/js/lti-storage.js" defer></script>' in page
    next_url = unescape(re.search(r'data-next="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    state = query_of(next_url)["state"]
    assert state.endswith(".post_message_forwarding")
    assert f'data-state="{state}"' in page


# Successful launches ---------------------------------------------------------------------------------------------


async def test_an_instructor_launch_signs_in_a_new_professor_on_the_embedded_dashboard(
    client: Any, lms: FakeLms, database_url: str
) -> None:
    response = await launch_as(client, lms, instructor(email="ada@uni.example"))
    assert response.status_code == 303
    landing = response.headers["location"]
    with psycopg.connect(database_url) as conn:
        (course_id,) = conn.execute("SELECT course_id FROM lti_context").fetchone()  # type: ignore[misc]
    assert landing.startswith(f"/embed/dashboard?course={course_id}&launch=")
    page = await client.get(f"{TOOL}{landing}", headers=FRAMED)
    assert page.status_code == 200
    assert "<h1>Dashboard</h1>" in page.text
    assert 'aria-label="Main"' not in page.text  # no site navigation inside the frame
    assert lti_accounts(database_url, lms.issuer) == [("professor", "ada@uni.example", "Ada", "lms-instructor-1")]


async def embedded_professor(client: Any, lms: FakeLms, database_url: str) -> tuple[Any, dict[str, str]]:
    """An instructor launched into the embedded dashboard: their account id, and the headers htmx sends from it."""
    response = await launch_as(client, lms, instructor())
    page = await client.get(f"{TOOL}{response.headers['location']}", headers=FRAMED)
    assert page.status_code == 200
    with psycopg.connect(database_url) as conn:
        (user_id,) = conn.execute("SELECT user_id FROM lti_identity WHERE issuer = %s", (lms.issuer,)).fetchone()
    return user_id, {**FRAMED, "HX-Request": "true", "x-csrftoken": client.cookies["csrftoken"]}


async def test_a_slot_published_inside_the_embedded_dashboard_is_stored(
    client: Any, lms: FakeLms, database_url: str
) -> None:
    professor_id, headers = await embedded_professor(client, lms, database_url)
    form = {"date": "2035-06-12", "start": "10:00", "end": "10:30", "capacity": "2", "location": "Room 4"}
    response = await client.post(f"{TOOL}/dashboard/slots", data=form, headers=headers)
    assert response.status_code == 200
    assert "Slot published for" in response.text
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT professor_id, capacity, location FROM consultation_slot").fetchall()
    assert rows == [(professor_id, 2, "Room 4")]


async def test_a_booking_confirmed_inside_the_embedded_dashboard_is_confirmed_and_the_student_told(
    client: Any, lms: FakeLms, database_url: str
) -> None:
    from tests.helpers import book, make_slot

    professor_id, headers = await embedded_professor(client, lms, database_url)
    async with provide_services() as services:
        professor = await services.users.get(professor_id)
    student = await make_user()
    booking = await book(student, await make_slot(professor))
    response = await client.post(f"{TOOL}/dashboard/bookings/{booking.id}/confirm", headers=headers)
    assert response.status_code == 200
    with psycopg.connect(database_url) as conn:
        (status,) = conn.execute("SELECT status FROM booking WHERE id = %s", (booking.id,)).fetchone()
        kinds = [r[0] for r in conn.execute("SELECT kind FROM notification WHERE user_id = %s", (student.id,))]
    assert status == "confirmed"
    assert "booking_confirmed" in kinds


async def test_a_learner_lands_on_the_grid_of_the_course_instructor_who_launched_before(
    client: Any, other_client: Any, lms: FakeLms, database_url: str
) -> None:
    await launch_as(other_client, lms, instructor())
    response = await launch_as(client, lms, learner())
    with psycopg.connect(database_url) as conn:
        (professor_id,) = conn.execute(
            "SELECT professor_id FROM lti_context WHERE context_id = 'course-101'"
        ).fetchone()  # type: ignore[misc]
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"/embed/professors/{professor_id}?launch=")
    page = await client.get(f"{TOOL}{response.headers['location']}", headers=FRAMED)
    assert page.status_code == 200
    assert f'sse-connect="/professors/{professor_id}/events"' in page.text


async def test_a_learner_lands_on_the_professor_the_custom_parameter_names(client: Any, lms: FakeLms) -> None:
    professor = await make_user("professor")
    lms.custom = {"professor": professor.username}
    response = await launch_as(client, lms, learner())
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"/embed/professors/{professor.id}?launch=")


async def test_a_teaching_assistant_books_like_a_student_and_does_not_replace_the_courses_professor(
    client: Any, other_client: Any, lms: FakeLms, database_url: str
) -> None:
    await launch_as(client, lms, instructor())
    assistant = Person(
        sub="lms-ta-1", roles=["http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"]
    )
    response = await launch_as(other_client, lms, assistant)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT i.subject, c.professor_id FROM lti_context c JOIN lti_identity i ON i.user_id = c.professor_id"
        ).fetchall()
        (user_type,) = conn.execute(
            "SELECT u.user_type FROM user_account u JOIN lti_identity i ON i.user_id = u.id WHERE i.subject = 'lms-ta-1'"
        ).fetchone()
    assert [subject for subject, _ in rows] == ["lms-instructor-1"]
    assert response.headers["location"].startswith(f"/embed/professors/{rows[0][1]}?launch=")
    assert user_type == "student"


@pytest.mark.parametrize(
    ("claims", "names"),
    [
        ({"given_name": "Ada", "family_name": "Lovelace"}, ("Ada", "Lovelace")),
        ({"given_name": "", "family_name": "", "name": "Augusta Ada King"}, ("Augusta Ada", "King")),
        ({"given_name": "", "family_name": "", "preferred_username": "aking"}, ("aking", "")),
    ],
)
async def test_a_launch_names_the_person_from_whichever_name_claims_the_platform_sends(
    client: Any, lms: FakeLms, database_url: str, claims: dict[str, str], names: tuple[str, str]
) -> None:
    person = dataclasses.replace(
        learner(),
        given_name=claims.get("given_name", "Mia"),
        family_name=claims.get("family_name", "Schmidt"),
        extra={key: value for key, value in claims.items() if key in ("name", "preferred_username")},
    )
    await launch_as(client, lms, instructor())
    await launch_as(client, lms, person)
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT u.first_name, u.last_name FROM user_account u JOIN lti_identity i ON i.user_id = u.id "
            "WHERE i.subject = %s",
            (person.sub,),
        ).fetchone()
    assert row == names


async def test_a_returning_person_gets_the_name_the_platform_sends_now(
    client: Any, other_client: Any, lms: FakeLms, database_url: str
) -> None:
    await launch_as(client, lms, instructor())
    await launch_as(client, lms, learner())
    await launch_as(other_client, lms, dataclasses.replace(learner(), given_name="Mia", family_name="Schmidt-Meyer"))
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT u.last_name FROM user_account u JOIN lti_identity i ON i.user_id = u.id WHERE i.subject = %s",
            (learner().sub,),
        ).fetchone()
    assert row == ("Schmidt-Meyer",)


async def test_a_returning_person_keeps_their_account(
    client: Any, other_client: Any, lms: FakeLms, database_url: str
) -> None:
    await launch_as(client, lms, instructor())
    response = await launch_as(other_client, lms, instructor())
    assert response.status_code == 303
    assert len(lti_accounts(database_url, lms.issuer)) == 1


async def test_a_framed_launch_gets_the_partitioned_session_cookie(client: Any, lms: FakeLms) -> None:
    response = await launch_as(client, lms, instructor())
    (cookie,) = session_cookies(response)
    assert cookie.endswith("; SameSite=None; Secure; Partitioned")


async def test_a_launch_in_a_window_of_its_own_gets_the_sites_lax_cookie(client: Any, lms: FakeLms) -> None:
    person = instructor()
    lms.people[person.sub] = person
    started = await login(client, lms, person.sub)
    form = await authenticate(started.headers["location"])
    response = await client.post(f"{TOOL}/lti/launch", data=form, headers={"sec-fetch-dest": "document"})
    (cookie,) = session_cookies(response)
    assert "SameSite=lax" in cookie
    assert "Partitioned" not in cookie


async def test_the_pages_of_an_embedded_session_keep_the_partitioned_cookie(client: Any, lms: FakeLms) -> None:
    response = await launch_as(client, lms, instructor())
    page = await client.get(f"{TOOL}/dashboard/slots-table", headers={"hx-request": "true"})
    assert page.status_code == 200
    (cookie,) = session_cookies(page)
    assert cookie.endswith("; SameSite=None; Secure; Partitioned")
    assert cookie.split(";")[0] == session_cookies(response)[0].split(";")[0]


@pytest.mark.parametrize(
    ("fetch", "signed_in"),
    [
        ({"sec-fetch-site": "cross-site", "sec-fetch-dest": "iframe"}, True),  # the LMS page loads the frame
        ({"sec-fetch-site": "same-origin", "sec-fetch-dest": "empty"}, True),  # htmx inside the frame
        ({"sec-fetch-site": "cross-site", "sec-fetch-dest": "document"}, False),  # a link from another site
    ],
)
async def test_an_embedded_session_counts_cross_site_only_inside_a_frame(
    client: Any, lms: FakeLms, fetch: dict[str, str], signed_in: bool
) -> None:
    await launch_as(client, lms, instructor())
    page = await client.get(f"{TOOL}/settings", headers=fetch)
    assert page.status_code == (200 if signed_in else 303)


async def test_the_launch_deletes_its_state_cookie(client: Any, lms: FakeLms) -> None:
    response = await launch_as(client, lms, instructor())
    assert not [name for name in client.cookies if name.startswith("lti_state_")]
    assert any(
        value.startswith("lti_state_") and "Max-Age=0" in value for value in response.headers.get_list("set-cookie")
    )


# Accounts --------------------------------------------------------------------------------------------------------


async def test_a_trusted_platforms_email_links_the_existing_account(
    client: Any, lms: FakeLms, database_url: str
) -> None:
    existing = await make_user("professor", email="ada@uni.example")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE lti_platform SET trust_email = true")
    await launch_as(client, lms, instructor(email="ADA@uni.example"))
    with psycopg.connect(database_url) as conn:
        linked = conn.execute("SELECT user_id FROM lti_identity").fetchall()
    assert linked == [(existing.id,)]


async def test_a_trusted_platform_does_not_join_an_account_whose_address_is_unproven(
    client: Any, lms: FakeLms, database_url: str
) -> None:
    """Else whoever registered a lecturer's address first (without proving it) would receive the lecturer's launches."""
    squatter = await make_user("professor", email="ada@uni.example", verified=False)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE lti_platform SET trust_email = true")
    await launch_as(client, lms, instructor(email="ada@uni.example"))
    with psycopg.connect(database_url) as conn:
        (user_id,) = conn.execute("SELECT user_id FROM lti_identity").fetchone()  # type: ignore[misc]
    assert user_id != squatter.id


async def test_an_untrusted_platforms_email_makes_a_separate_account(
    client: Any, lms: FakeLms, database_url: str
) -> None:
    existing = await make_user("professor", email="ada@uni.example")
    await launch_as(client, lms, instructor(email="ada@uni.example"))
    with psycopg.connect(database_url) as conn:
        (user_id, email) = conn.execute(  # type: ignore[misc]
            "SELECT u.id, u.email FROM lti_identity i JOIN user_account u ON u.id = i.user_id"
        ).fetchone()
    assert user_id != existing.id
    assert email.endswith("@lti.invalid")


# The launch token: a new tab where the frame keeps no cookie ---------------------------------------------------


async def test_an_embed_view_reached_without_the_cookie_offers_a_new_tab(
    client: Any, other_client: Any, lms: FakeLms
) -> None:
    response = await launch_as(client, lms, instructor())
    token = query_of(response.headers["location"])["launch"]
    page = await other_client.get(f"{TOOL}{response.headers['location']}", headers=FRAMED)  # the cookie was not kept
    assert page.status_code == 200
    assert f'<a role="button" href="/embed/open?token={token}">Open office hours in a new tab</a>' in page.text


async def test_the_launch_token_signs_in_a_new_tab_once(client: Any, other_client: Any, lms: FakeLms) -> None:
    response = await launch_as(client, lms, instructor())
    token = query_of(response.headers["location"])["launch"]
    tab = other_client
    opened = await tab.get(f"{TOOL}/embed/open", params={"token": token})
    assert opened.status_code == 303
    assert opened.headers["location"].startswith("/embed/dashboard?course=")
    (cookie,) = session_cookies(opened)
    assert "SameSite=lax" in cookie  # a top-level tab needs no cross-site cookie
    assert (await tab.get(f"{TOOL}/embed/dashboard")).status_code == 200
    again = await tab.get(f"{TOOL}/embed/open", params={"token": token})
    assert again.status_code == 400
    assert "This link has expired or was used already" in again.text


async def test_an_expired_launch_token_is_refused(
    client: Any, other_client: Any, lms: FakeLms, database_url: str
) -> None:
    response = await launch_as(client, lms, instructor())
    token = query_of(response.headers["location"])["launch"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE lti_launch_token SET expires_at = now() - interval '1 second'")
    opened = await other_client.get(f"{TOOL}/embed/open", params={"token": token})
    assert opened.status_code == 400
    assert session_cookies(opened) == []


# Refusals: a plain error page in the frame, logged, and no session -----------------------------------------------


async def test_a_launch_from_an_unknown_issuer_is_refused(client: Any, lms: FakeLms) -> None:
    response = await post_token(client, lms, instructor(), iss="https://lms.elsewhere.example")
    assert response.status_code == 400
    assert "Unknown platform: no registration for issuer &#39;https://lms.elsewhere.example&#39;" in response.text
    assert session_cookies(response) == []


async def test_a_launch_for_an_unknown_client_is_refused(client: Any, lms: FakeLms, refusals: list[str]) -> None:
    response = await post_token(client, lms, instructor(), aud="another-tool")
    assert response.status_code == 400
    assert "Unknown platform: no registration for issuer" in response.text
    assert session_cookies(response) == []
    assert refusals == [
        f"LTI refused at /lti/launch: Unknown platform: no registration for issuer {lms.issuer!r} and client id 'another-tool'."
    ]


async def test_a_launch_with_a_bad_signature_is_refused(client: Any, lms: FakeLms, refusals: list[str]) -> None:
    forger = new_key(lms.key.kid)  # the platform's key id, someone else's key
    response = await post_token(client, lms, instructor(), key=forger)
    assert response.status_code == 401
    assert "The id_token&#39;s signature is not valid." in response.text
    assert session_cookies(response) == []
    assert refusals == ["LTI refused at /lti/launch: The id_token's signature is not valid."]


async def test_a_launch_signed_with_a_key_the_platform_never_published_is_refused(client: Any, lms: FakeLms) -> None:
    response = await post_token(client, lms, instructor(), key=new_key("not-published"))
    assert response.status_code == 401
    assert "signed with a key the platform does not publish: not-published." in response.text
    assert session_cookies(response) == []


async def test_an_expired_launch_is_refused(client: Any, lms: FakeLms, refusals: list[str]) -> None:
    response = await post_token(client, lms, instructor(), exp=1_700_000_000, iat=1_699_999_700)
    assert response.status_code == 401
    assert "The launch has expired; open the tool again from your course." in response.text
    assert session_cookies(response) == []
    assert refusals == ["LTI refused at /lti/launch: The launch has expired; open the tool again from your course."]


async def test_a_replayed_launch_is_refused(client: Any, other_client: Any, lms: FakeLms) -> None:
    person = instructor()
    lms.people[person.sub] = person
    started = await login(client, lms, person.sub)
    form = await authenticate(started.headers["location"])
    first = await client.post(f"{TOOL}/lti/launch", data=form, headers=FRAMED)
    assert first.status_code == 303
    # The captured form post again, from a browser given its state cookie too: the nonce is spent.
    other_client.cookies.set(f"lti_state_{form['state']}", "1", domain="testserver.local", path="/lti/")
    replay = await other_client.post(f"{TOOL}/lti/launch", data=form, headers=FRAMED)
    assert replay.status_code == 401
    assert "This launch was used already (replayed nonce); open the tool again." in replay.text
    assert session_cookies(replay) == []


async def test_a_launch_with_a_mismatched_state_is_refused(client: Any, lms: FakeLms, refusals: list[str]) -> None:
    person = instructor()
    lms.people[person.sub] = person
    started = await login(client, lms, person.sub)
    form = await authenticate(started.headers["location"])
    response = await client.post(f"{TOOL}/lti/launch", data={**form, "state": "forged-state"}, headers=FRAMED)
    assert response.status_code == 401
    assert "This launch was not started in this browser (state mismatch)." in response.text
    assert session_cookies(response) == []
    assert refusals == ["LTI refused at /lti/launch: This launch was not started in this browser (state mismatch)."]


async def test_a_token_minted_for_another_sign_in_is_refused(client: Any, lms: FakeLms) -> None:
    response = await post_token(client, lms, instructor(), nonce="a-nonce-from-another-login")
    assert response.status_code == 401
    assert "The id_token was not issued for this sign-in (nonce mismatch)." in response.text
    assert session_cookies(response) == []


async def test_a_launch_from_an_unregistered_deployment_is_refused(
    client: Any, lms: FakeLms, refusals: list[str]
) -> None:
    response = await post_token(
        client, lms, instructor(), **{"https://purl.imsglobal.org/spec/lti/claim/deployment_id": "deployment-9"}
    )
    assert response.status_code == 400
    assert "Deployment &#39;deployment-9&#39; of this platform is not registered." in response.text
    assert session_cookies(response) == []
    assert refusals == ["LTI refused at /lti/launch: Deployment 'deployment-9' of this platform is not registered."]


async def test_a_launch_of_another_message_type_is_refused(client: Any, lms: FakeLms) -> None:
    message_type = {"https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiSubmissionReviewRequest"}
    response = await post_token(client, lms, instructor(), **message_type)
    assert response.status_code == 400
    assert "Message type &#39;LtiSubmissionReviewRequest&#39; is not supported" in response.text
    assert session_cookies(response) == []


async def test_a_launch_of_another_lti_version_is_refused(client: Any, lms: FakeLms) -> None:
    response = await post_token(
        client, lms, instructor(), **{"https://purl.imsglobal.org/spec/lti/claim/version": "1.1"}
    )
    assert response.status_code == 400
    assert "LTI version &#39;1.1&#39; is not supported" in response.text


async def test_a_refused_launch_creates_no_account(client: Any, lms: FakeLms, database_url: str) -> None:
    await post_token(client, lms, instructor(), **{"https://purl.imsglobal.org/spec/lti/claim/version": "1.1"})
    assert lti_accounts(database_url, lms.issuer) == []


async def test_a_learner_launch_in_a_course_without_a_professor_is_refused(
    client: Any, lms: FakeLms, database_url: str
) -> None:
    response = await launch_as(client, lms, learner())
    assert response.status_code == 400
    assert "No professor is linked to this course yet" in response.text
    assert session_cookies(response) == []
    assert lti_accounts(database_url, lms.issuer) == []


async def test_a_refusal_page_may_be_shown_in_the_platforms_frame(client: Any, lms: FakeLms) -> None:
    response = await post_token(client, lms, instructor(), exp=1_700_000_000, iat=1_699_999_700)
    assert f"frame-ancestors {lms.issuer}" in response.headers["content-security-policy"]
    assert "x-frame-options" not in response.headers
    assert 'aria-label="Main"' not in response.text


# Keys ------------------------------------------------------------------------------------------------------------


async def test_a_rotated_platform_key_is_fetched_again_by_its_new_kid(
    client: Any, other_client: Any, lms: FakeLms
) -> None:
    assert (await launch_as(client, lms, instructor())).status_code == 303
    lms.rotate_key()
    response = await launch_as(other_client, lms, instructor("lms-instructor-2"))
    assert response.status_code == 303
    assert lms.jwks_requests == 2


async def test_the_platforms_keys_are_cached_between_launches(client: Any, other_client: Any, lms: FakeLms) -> None:
    await launch_as(client, lms, instructor())
    await launch_as(other_client, lms, instructor("lms-instructor-2"))
    assert lms.jwks_requests == 1


async def test_a_platform_whose_keys_cannot_be_fetched_gets_a_502(
    client: Any, lms: FakeLms, refusals: list[str]
) -> None:
    lms.jwks_fails_with = 503
    response = await launch_as(client, lms, instructor())
    assert response.status_code == 502
    assert "The platform&#39;s public keys could not be fetched; try again shortly." in response.text
    assert session_cookies(response) == []
    assert refusals == [
        "LTI refused at /lti/launch: The platform's public keys could not be fetched; try again shortly."
    ]


async def test_a_flood_of_unknown_key_ids_fetches_the_platforms_keys_once_per_cooldown(
    client: Any, other_client: Any, lms: FakeLms
) -> None:
    assert (await launch_as(client, lms, instructor())).status_code == 303
    assert lms.jwks_requests == 1
    statuses = [
        (await post_token(other_client, lms, instructor(), key=new_key(f"made-up-{i}"))).status_code for i in range(5)
    ]
    assert statuses == [401] * 5
    assert lms.jwks_requests == 2  # one re-fetch for the first unknown kid, none for the others in the cooldown


async def test_the_jwks_publishes_the_tools_public_key_only(client: Any) -> None:
    response = await client.get("/lti/jwks")
    assert response.status_code == 200
    (key,) = response.json()["keys"]
    assert sorted(key) == ["alg", "e", "kid", "kty", "n", "use"]
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")


async def test_the_tools_key_is_made_once(client: Any) -> None:
    first = (await client.get("/lti/jwks")).json()
    assert (await client.get("/lti/jwks")).json() == first


@pytest.mark.slow
async def test_a_rotated_tool_key_is_published_beside_the_previous_one(client: Any, database_url: str) -> None:
    (old,) = (await client.get("/lti/jwks")).json()["keys"]
    rotated = cli(database_url, "rotate-key")
    assert rotated.returncode == 0, rotated.stderr
    keys = (await client.get("/lti/jwks")).json()["keys"]
    assert [key["kid"] for key in keys] == [rotated.stdout.split()[2].rstrip(";"), old["kid"]]


async def retire_current_tool_key(database_url: str, days_ago: float) -> str:
    """Rotate the tool's key as `app lti rotate-key` does, then date the retirement `days_ago` days back."""
    async with provide_services() as services:
        old = await ToolKeyService(session=services.session).current(get_settings())
        await ToolKeyService(session=services.session).rotate(get_settings())
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE lti_key SET retired_at = now() - make_interval(secs => %s) WHERE kid = %s",
            (days_ago * 86400, old.kid),
        )
    return str(old.kid)


def tool_key_rows(database_url: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        return [row[0] for row in conn.execute("SELECT kid FROM lti_key")]


async def test_a_tool_key_retired_six_days_ago_is_still_published(client: Any, database_url: str) -> None:
    old = await retire_current_tool_key(database_url, days_ago=6)
    assert old in [key["kid"] for key in (await client.get("/lti/jwks")).json()["keys"]]


async def test_a_tool_key_retired_more_than_seven_days_ago_is_no_longer_published(
    client: Any, database_url: str
) -> None:
    old = await retire_current_tool_key(database_url, days_ago=7.01)
    keys = (await client.get("/lti/jwks")).json()["keys"]
    assert len(keys) == 1
    assert old not in [key["kid"] for key in keys]


async def test_the_next_rotation_deletes_tool_keys_retired_more_than_seven_days_ago(database_url: str) -> None:
    expired = await retire_current_tool_key(database_url, days_ago=8)
    recent = await retire_current_tool_key(database_url, days_ago=1)
    kept = tool_key_rows(database_url)
    assert expired not in kept
    assert recent in kept
    assert len(kept) == 2  # the key retired a day ago and the current one


# Frames ----------------------------------------------------------------------------------------------------------


async def test_the_embed_views_may_be_framed_by_the_registered_platforms(client: Any, lms: FakeLms) -> None:
    professor = await make_user("professor")
    response = await client.get(f"/embed/professors/{professor.id}")
    assert response.status_code == 200
    assert response.headers["content-security-policy"].endswith(f"; frame-ancestors {lms.issuer}")
    assert "x-frame-options" not in response.headers


async def test_every_other_page_refuses_to_be_framed(client: Any, lms: FakeLms) -> None:
    response = await client.get("/login")
    assert response.headers["content-security-policy"].endswith("; frame-ancestors 'none'")
    assert response.headers["x-frame-options"] == "DENY"


async def test_without_a_platform_or_setting_no_one_may_frame_the_embed_views(client: Any) -> None:
    professor = await make_user("professor")
    response = await client.get(f"/embed/professors/{professor.id}")
    assert response.headers["content-security-policy"].endswith("; frame-ancestors 'none'")


# Platform storage instead of the state cookie ----------------------------------------------------------------------


async def storage_launch(client: Any, lms: FakeLms, person: Person) -> dict[str, str]:
    """A login with platform storage whose state cookie the browser did not keep; returns the launch page's form."""
    lms.people[person.sub] = person
    started = await login(client, lms, person.sub, lti_storage_target="post_message_forwarding")
    next_url = unescape(re.search(r'data-next="([^"]+)"', started.text).group(1))  # type: ignore[union-attr]
    form = await authenticate(next_url)
    client.cookies.clear()
    page = await client.post(f"{TOOL}/lti/launch", data=form, headers=FRAMED)
    assert page.status_code == 200
    assert 'action="/lti/launch/verify"' in page.text
    assert f'data-origin="{lms.issuer}"' in page.text
    return {**form, "nonce": query_of(next_url)["nonce"]}


async def test_a_launch_without_the_cookie_completes_with_what_the_platform_stored(client: Any, lms: FakeLms) -> None:
    form = await storage_launch(client, lms, instructor())
    response = await client.post(
        f"{TOOL}/lti/launch/verify",
        data={
            "id_token": form["id_token"],
            "state": form["state"],
            "stored_state": form["state"],
            "stored_nonce": form["nonce"],
        },
        headers={**FRAMED, "sec-fetch-site": "same-origin"},
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/embed/dashboard?course=")


async def test_the_stored_state_must_match_the_launch(client: Any, lms: FakeLms) -> None:
    form = await storage_launch(client, lms, instructor())
    response = await client.post(
        f"{TOOL}/lti/launch/verify",
        data={
            "id_token": form["id_token"],
            "state": form["state"],
            "stored_state": "other",
            "stored_nonce": form["nonce"],
        },
        headers={**FRAMED, "sec-fetch-site": "same-origin"},
    )
    assert response.status_code == 401
    assert "The course page does not hold this launch&#39;s state (state mismatch)." in response.text
    assert session_cookies(response) == []


async def test_the_storage_step_refuses_a_post_from_another_site(client: Any, lms: FakeLms) -> None:
    form = await storage_launch(client, lms, instructor())
    response = await client.post(
        f"{TOOL}/lti/launch/verify",
        data={
            "id_token": form["id_token"],
            "state": form["state"],
            "stored_state": form["state"],
            "stored_nonce": form["nonce"],
        },
        headers={**FRAMED, "sec-fetch-site": "cross-site"},
    )
    assert response.status_code == 403
    assert session_cookies(response) == []


# The embed sign-in (frames allowed by FRAME_ANCESTORS, no LMS launch) ----------------------------------------------


async def test_an_anonymous_embed_view_offers_the_sign_in_form(client: Any) -> None:
    professor = await make_user("professor")
    response = await client.get(f"{TOOL}/embed/professors/{professor.id}?week=2030-01-07", headers=FRAMED)
    assert response.status_code == 200
    assert '<form method="post" action="/embed/login" target="_self" novalidate data-sign-in>' in response.text
    assert f'name="next" value="/embed/professors/{professor.id}?week=2030-01-07"' in response.text
    assert '<div data-cookie-probe="/embed/probe">' in response.text


async def test_a_framed_sign_in_page_sets_a_csrf_cookie_the_frame_can_keep(client: Any) -> None:
    professor = await make_user("professor")
    response = await client.get(f"{TOOL}/embed/professors/{professor.id}", headers=FRAMED)
    (cookie,) = response.headers.get_list("set-cookie")
    assert cookie.startswith("csrftoken=")
    assert cookie.endswith("; SameSite=None; Secure; Partitioned")


async def test_the_cookie_probe_says_the_frame_kept_the_csrf_cookie(client: Any) -> None:
    professor = await make_user("professor")
    await client.get(f"{TOOL}/embed/professors/{professor.id}", headers=FRAMED)
    assert (await client.get(f"{TOOL}/embed/probe")).json() == {"cookies": True}


async def test_the_cookie_probe_says_the_frame_kept_no_cookie(client: Any) -> None:
    assert (await client.get(f"{TOOL}/embed/probe")).json() == {"cookies": False}


async def test_the_embed_sign_in_opens_the_view_with_a_partitioned_session(client: Any) -> None:
    professor, student = await make_user("professor"), await make_user()
    view = f"/embed/professors/{professor.id}"
    await client.get(f"{TOOL}{view}", headers=FRAMED)
    response = await client.post(
        f"{TOOL}/embed/login",
        data={
            "username": student.username,
            "password": "correct-horse-battery",
            "next": view,
            "_csrf_token": client.cookies["csrftoken"],
        },
        headers=FRAMED,
    )
    assert response.status_code == 303
    assert response.headers["location"] == view
    (cookie,) = session_cookies(response)
    assert cookie.endswith("; SameSite=None; Secure; Partitioned")
    page = await client.get(f"{TOOL}{view}", headers=FRAMED)
    assert f'sse-connect="/professors/{professor.id}/events"' in page.text


async def test_a_wrong_password_in_the_frame_shows_the_form_again(client: Any) -> None:
    professor, student = await make_user("professor"), await make_user()
    view = f"/embed/professors/{professor.id}"
    await client.get(f"{TOOL}{view}", headers=FRAMED)
    response = await client.post(
        f"{TOOL}/embed/login",
        data={
            "username": student.username,
            "password": "wrong-password!",
            "next": view,
            "_csrf_token": client.cookies["csrftoken"],
        },
        headers=FRAMED,
    )
    assert response.status_code == 400
    assert "Invalid username or password." in response.text
    assert session_cookies(response) == []


async def test_a_student_has_no_embedded_dashboard(client: Any) -> None:
    from tests.helpers import web_login

    await web_login(client, (await make_user()).username)
    response = await client.get("/embed/dashboard")
    assert response.status_code == 403
    assert "Only professors have a dashboard." in response.text


# The command line ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_cli_registers_lists_and_removes_a_platform(database_url: str) -> None:
    added = cli(
        database_url,
        "add-platform",
        "--issuer=https://canvas.instructure.com",
        "--client-id=10000000000042",
        "--deployment-id=7:abc",
        "--deployment-id=8:def",
        "--auth-url=https://sso.canvaslms.com/api/lti/authorize_redirect",
        "--jwks-url=https://sso.canvaslms.com/api/lti/security/jwks",
        "--token-url=https://sso.canvaslms.com/login/oauth2/token",
        "--name=Canvas",
        "--trust-email",
    )
    assert added.returncode == 0, added.stderr
    platform_id = added.stdout.split("(")[1].split(")")[0]
    listed = cli(database_url, "list")
    assert f"{platform_id}  Canvas" in listed.stdout
    assert "  issuer https://canvas.instructure.com  client 10000000000042  trusts emails" in listed.stdout
    assert "  deployments 7:abc, 8:def" in listed.stdout
    removed = cli(database_url, "remove", platform_id)
    assert removed.stdout == f"removed {platform_id}\n"
    assert platform_id not in cli(database_url, "list").stdout


@pytest.mark.slow
def test_the_cli_refuses_a_platform_without_https(database_url: str) -> None:
    added = cli(
        database_url,
        "add-platform",
        "--issuer=http://lms.uni.example",
        "--client-id=1",
        "--deployment-id=1",
        "--auth-url=https://lms.uni.example/auth",
        "--jwks-url=https://lms.uni.example/jwks",
    )
    assert added.returncode == 1
    assert "issuer: Give an https:// URL (http:// only for localhost)." in added.stderr
