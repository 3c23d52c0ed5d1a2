"""LTI Advantage against the simulated platform (tests/fake_lms.py) on loopback: Dynamic Registration, Deep Linking
and Names and Role Provisioning, with the course dashboard built on the roster.

The platform verifies what the tool signs (client assertions, deep-linking responses) with the keys the tool
publishes at /lti/jwks, as a real platform would.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html import unescape
from typing import Any

import httpx
import psycopg
import pytest

from app.config import get_settings
from app.domain.lti.roster import service_tokens
from app.lib.jwks import jwks_cache
from app.worker import deliver_notification, refresh_course_roster, refresh_stale_rosters
from tests.conftest import free_port
from tests.fake_lms import FakeLms, FakeLmsServer, instructor, learner, member, register_platform
from tests.helpers import make_user
from tests.integration.test_lti import FRAMED, TOOL, cli, launch_as, login

FORM_FIELD = re.compile(r'name="([^"]+)" value="([^"]*)"')


@pytest.fixture
async def platform(database_url: str, client: Any) -> AsyncIterator[FakeLms]:
    """A platform on loopback that knows the tool's public keys, not registered with the tool yet."""
    jwks_cache.forget()
    service_tokens.cached.clear()
    server = FakeLmsServer(free_port(), get_settings().app_url)
    lms = server.start()
    lms.tool_jwks = (await client.get("/lti/jwks")).json()
    yield lms
    server.stop()


@pytest.fixture
async def lms(platform: FakeLms) -> FakeLms:
    await register_platform(platform)
    return platform


def rows(database_url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(query, params).fetchall()


def form_of(page: str) -> dict[str, str]:
    return {name: unescape(value) for name, value in FORM_FIELD.findall(page)}


# Dynamic registration ----------------------------------------------------------------------------------------------


async def start_registration(client: Any, lms: FakeLms, token: str | None = None) -> httpx.Response:
    params = {"openid_configuration": lms.configuration_url, "registration_token": token or lms.registration_token}
    return await client.get(f"{TOOL}/lti/register", params=params, headers=FRAMED)


async def register(client: Any, lms: FakeLms, token: str | None = None) -> httpx.Response:
    page = await start_registration(client, lms, token)
    assert page.status_code == 200, page.text
    return await client.post(f"{TOOL}/lti/register", data=form_of(page.text), headers=FRAMED)


async def test_the_registration_page_shows_the_platform_and_may_be_framed_by_it(client: Any, platform: FakeLms) -> None:
    page = await start_registration(client, platform)
    assert page.status_code == 200
    assert f"(issuer <code>{platform.issuer}</code>)" in page.text
    assert '<button type="submit">Register office hours</button>' in page.text
    assert page.headers["content-security-policy"].endswith("frame-ancestors *")


async def test_dynamic_registration_registers_the_tool_and_stores_the_platform_waiting_for_approval(
    client: Any, platform: FakeLms, database_url: str
) -> None:
    response = await register(client, platform)
    assert response.status_code == 200, response.text
    assert "One step is left" in response.text
    assert "data-lti-close" in response.text
    (sent,) = platform.registrations
    app_url = get_settings().app_url
    assert sent["initiate_login_uri"] == f"{app_url}/lti/login"
    assert sent["redirect_uris"] == [f"{app_url}/lti/launch"]
    assert sent["jwks_uri"] == f"{app_url}/lti/jwks"
    assert sent["token_endpoint_auth_method"] == "private_key_jwt"
    assert sent["scope"] == "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
    messages = sent["https://purl.imsglobal.org/spec/lti-tool-configuration"]["messages"]
    assert [message["type"] for message in messages] == ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"]
    assert rows(
        database_url,
        "SELECT issuer, client_id, deployment_ids, auth_login_url, jwks_url, token_url, registered_via, approved_at"
        " FROM lti_platform",
    ) == [
        (
            platform.issuer,
            "dynamic-client-1",
            ["dynamic-deployment-1"],
            platform.auth_url,
            platform.jwks_url,
            platform.token_url,
            "dynamic",
            None,
        )
    ]


async def test_a_dynamically_registered_platform_launches_only_once_approved(
    client: Any, other_client: Any, platform: FakeLms, database_url: str
) -> None:
    await register(client, platform)
    refused = await login(client, platform, "lms-instructor-1")
    assert refused.status_code == 403
    assert "registration waits for an administrator of office hours to approve it" in refused.text
    (platform_id,) = rows(database_url, "SELECT id FROM lti_platform")[0]
    approved = cli(database_url, "approve", str(platform_id))
    assert approved.returncode == 0, approved.stderr
    response = await launch_as(other_client, platform, instructor())
    assert response.status_code == 303
    assert response.headers["location"].startswith("/embed/dashboard?course=")


async def test_an_administrator_approves_a_platform_on_the_admin_page(
    client: Any, other_client: Any, platform: FakeLms, database_url: str
) -> None:
    from tests.helpers import csrf_headers, make_admin, web_login

    await register(client, platform)
    (platform_id,) = rows(database_url, "SELECT id FROM lti_platform")[0]
    admin = await make_admin("professor")
    await web_login(other_client, admin.username)
    page = await other_client.get("/admin/lti")
    assert "Waiting for approval" in page.text
    assert f'action="/admin/lti/{platform_id}/approve"' in page.text
    approved = await other_client.post(f"/admin/lti/{platform_id}/approve", headers=csrf_headers(other_client))
    assert approved.status_code == 303
    assert rows(database_url, "SELECT approved_at IS NOT NULL FROM lti_platform") == [(True,)]


async def test_with_lti_auto_approve_a_registered_platform_launches_at_once(
    client: Any, other_client: Any, platform: FakeLms, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from app.domain.lti import controllers

    settings = dataclasses.replace(get_settings(), lti_auto_approve=True)
    monkeypatch.setattr(controllers, "get_settings", lambda: settings)
    registered = await register(client, platform)
    assert "Courses can add it now." in registered.text
    assert rows(database_url, "SELECT approved_at IS NOT NULL FROM lti_platform") == [(True,)]
    response = await launch_as(other_client, platform, instructor())
    assert response.status_code == 303


async def test_an_administrator_removes_a_platform_on_the_admin_page(
    client: Any, other_client: Any, platform: FakeLms, database_url: str
) -> None:
    from tests.helpers import csrf_headers, make_admin, web_login

    await register(client, platform)
    (platform_id,) = rows(database_url, "SELECT id FROM lti_platform")[0]
    admin = await make_admin("professor")
    await web_login(other_client, admin.username)
    removed = await other_client.post(f"/admin/lti/{platform_id}/remove", headers=csrf_headers(other_client))
    assert removed.status_code == 303
    assert rows(database_url, "SELECT count(*) FROM lti_platform") == [(0,)]
    refused = await login(client, platform, "lms-instructor-1")
    assert (refused.status_code, "Unknown platform" in refused.text) == (400, True)


async def test_a_registration_with_the_wrong_token_is_refused_and_stores_nothing(
    client: Any, platform: FakeLms, database_url: str
) -> None:
    response = await register(client, platform, token="not-the-platforms-token")
    assert response.status_code == 400
    assert "The platform refused the registration (HTTP 401: invalid_token)." in response.text
    assert platform.registrations == []
    assert rows(database_url, "SELECT count(*) FROM lti_platform") == [(0,)]


async def test_a_configuration_whose_issuer_is_on_another_origin_is_refused(
    client: Any, platform: FakeLms, database_url: str
) -> None:
    platform.configuration_overrides["issuer"] = "https://lms.elsewhere.example"
    page = await start_registration(client, platform)
    assert page.status_code == 400
    assert "does not match the origin of its configuration URL" in page.text
    assert page.headers["content-security-policy"].endswith("frame-ancestors *")  # the refusal shows in the frame
    assert rows(database_url, "SELECT count(*) FROM lti_platform") == [(0,)]


async def test_the_registration_post_needs_the_csrf_token(client: Any, platform: FakeLms) -> None:
    page = await start_registration(client, platform)
    form = {name: value for name, value in form_of(page.text).items() if name != "_csrf_token"}
    response = await client.post(f"{TOOL}/lti/register", data=form, headers=FRAMED)
    assert response.status_code == 403
    assert platform.registrations == []


# Deep linking ---------------------------------------------------------------------------------------------------------


async def choose(client: Any, lms: FakeLms, *professors: Any, title: str = "") -> httpx.Response:
    """The deep-linking launch, the chooser in the frame, and the choice posted."""
    lms.deep_linking_request()
    launched = await launch_as(client, lms, instructor())
    assert launched.status_code == 303, launched.text
    chooser_url = launched.headers["location"]
    assert chooser_url.startswith("/embed/deep-link/")
    chooser = await client.get(f"{TOOL}{chooser_url}", headers=FRAMED)
    assert chooser.status_code == 200
    assert "Whose office hours?" in chooser.text
    data: dict[str, Any] = {
        "professor_ids": [str(p.id) for p in professors],
        "title": title,
        "_csrf_token": client.cookies["csrftoken"],
    }
    return await client.post(f"{TOOL}{chooser_url.split('?')[0]}", data=data, headers=FRAMED)


async def post_answer(page: str) -> str:
    """The browser posting the tool's deep-linking answer on to the platform (which must accept it); returns where."""
    action = unescape(re.search(r'action="([^"]+)"', page).group(1))  # type: ignore[union-attr]
    async with httpx.AsyncClient() as browser:
        placed = await browser.post(action, data=form_of(page))
    assert placed.status_code == 200, placed.text
    return action


async def send_back(lms: FakeLms, answer: httpx.Response) -> dict[str, Any]:
    """The answer posted to the fake platform, which verifies it with the tool's public keys."""
    assert await post_answer(answer.text) == lms.deep_link_return_url
    return lms.deep_link_responses[-1]


async def test_deep_linking_answers_a_signed_resource_link_for_the_chosen_professor(
    client: Any, lms: FakeLms, database_url: str
) -> None:
    colleague = await make_user("professor", first_name="Grace", last_name="Hopper")
    answer = await choose(client, lms, colleague)
    assert answer.status_code == 200, answer.text
    assert "data-auto-submit" in answer.text
    assert f"form-action 'self' {lms.issuer}" in answer.headers["content-security-policy"]
    claims = await send_back(lms, answer)
    assert claims["iss"] == "office-hours-tool"
    assert claims["aud"] == lms.issuer
    assert claims["https://purl.imsglobal.org/spec/lti/claim/message_type"] == "LtiDeepLinkingResponse"
    assert claims["https://purl.imsglobal.org/spec/lti/claim/deployment_id"] == "deployment-1"
    assert claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == "platform-opaque-data"
    (item,) = claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert item == {
        "type": "ltiResourceLink",
        "title": "Office hours: Grace Hopper",
        "url": f"{get_settings().app_url}/lti/launch",
        "custom": {"professor": str(colleague.id)},
    }
    # The request is used up.
    assert rows(database_url, "SELECT count(*) FROM lti_deep_link_request") == [(0,)]


async def test_the_placed_link_opens_exactly_the_chosen_professors_week(
    client: Any, other_client: Any, lms: FakeLms
) -> None:
    colleague = await make_user("professor")
    claims = await send_back(lms, await choose(client, lms, colleague))
    (item,) = claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    lms.resource_link(item["custom"])
    response = await launch_as(other_client, lms, learner())
    assert response.status_code == 303
    assert response.headers["location"].startswith(f"/embed/professors/{colleague.id}?launch=")


async def test_several_professors_are_placed_as_a_course_wide_view(
    client: Any, other_client: Any, lms: FakeLms
) -> None:
    first = await make_user("professor", first_name="Ada", last_name="Lovelace")
    second = await make_user("professor", first_name="Alan", last_name="Turing")
    claims = await send_back(lms, await choose(client, lms, first, second, title="Algorithms office hours"))
    (item,) = claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert item["title"] == "Algorithms office hours"
    assert item["custom"] == {"professors": f"{first.id},{second.id}"}
    lms.resource_link(item["custom"])
    response = await launch_as(other_client, lms, learner())
    assert response.status_code == 303
    view = response.headers["location"]
    assert view.startswith("/embed/office-hours?")
    page = await other_client.get(f"{TOOL}{view}", headers=FRAMED)
    assert page.status_code == 200
    assert f'<a href="/embed/professors/{first.id}" target="_self">Ada Lovelace</a>' in page.text
    assert f'<a href="/embed/professors/{second.id}" target="_self">Alan Turing</a>' in page.text


async def test_choosing_nobody_shows_the_chooser_again_naming_the_field(client: Any, lms: FakeLms) -> None:
    answer = await choose(client, lms)
    assert answer.status_code == 422
    assert "Choose at least one professor." in answer.text
    assert lms.deep_link_responses == []


async def test_a_learner_cannot_place_office_hours(client: Any, lms: FakeLms) -> None:
    await launch_as(client, lms, instructor())  # the course has a professor
    lms.deep_linking_request()
    response = await launch_as(client, lms, learner())
    assert response.status_code == 403
    assert "Only the course&#39;s instructors can place office hours in it." in response.text


async def test_another_instructors_deep_link_request_is_not_found(client: Any, other_client: Any, lms: FakeLms) -> None:
    lms.deep_linking_request()
    launched = await launch_as(client, lms, instructor())
    await launch_as(other_client, lms, instructor("lms-instructor-2"))
    page = await other_client.get(f"{TOOL}{launched.headers['location'].split('?')[0]}", headers=FRAMED)
    assert page.status_code == 404


# Names and Role Provisioning, and the course's students ---------------------------------------------------------------


def roster_of(lms: FakeLms) -> None:
    lms.roster = [
        member("lms-instructor-1", "Instructor", "Ada Lovelace", "ada@uni.example"),
        member("lms-learner-1", "Learner", "Mia Schmidt", "mia@uni.example"),
        member("lms-learner-2", "Learner", "Noah Weber", "noah@uni.example"),
        member("lms-learner-3", "Learner", "Lea Braun", "lea@uni.example"),
        member("lms-learner-4", "Learner", "Ben Gone", "ben@uni.example", status="Inactive"),
    ]


async def course_id_of(database_url: str) -> Any:
    return rows(database_url, "SELECT course_id FROM lti_context")[0][0]


async def test_an_instructor_launch_queues_the_roster_and_the_job_fetches_every_page(
    client: Any, lms: FakeLms, database_url: str
) -> None:
    roster_of(lms)
    lms.offer_roster()
    await launch_as(client, lms, instructor())
    ((context_id, memberships_url),) = rows(database_url, "SELECT id, memberships_url FROM lti_context")
    assert memberships_url == lms.memberships_url
    assert rows(database_url, "SELECT key FROM saq_jobs WHERE key = %s", f"roster:{context_id}") == [
        (f"roster:{context_id}",)
    ]
    assert await refresh_course_roster({}, context_id=str(context_id)) == 4
    assert lms.membership_requests == ["course-101:1", "course-101:2", "course-101:3"]
    (assertion,) = lms.assertions  # one token for the three pages
    assert (assertion["iss"], assertion["sub"], assertion["aud"]) == ("office-hours-tool",) * 2 + (lms.token_url,)
    assert rows(database_url, "SELECT subject, role FROM lti_roster_member ORDER BY subject") == [
        ("lms-instructor-1", "instructor"),
        ("lms-learner-1", "learner"),
        ("lms-learner-2", "learner"),
        ("lms-learner-3", "learner"),
    ]


async def test_the_access_token_is_reused_until_it_expires(client: Any, lms: FakeLms, database_url: str) -> None:
    roster_of(lms)
    lms.offer_roster()
    await launch_as(client, lms, instructor())
    ((context_id,),) = rows(database_url, "SELECT id FROM lti_context")
    await refresh_course_roster({}, context_id=str(context_id))
    await refresh_course_roster({}, context_id=str(context_id))
    assert len(lms.assertions) == 1


async def test_a_refused_client_assertion_is_told_to_the_instructor(
    client: Any, lms: FakeLms, database_url: str
) -> None:
    roster_of(lms)
    lms.offer_roster()
    await launch_as(client, lms, instructor())
    lms.tool_jwks = {"keys": []}  # the platform no longer knows the tool's key: every assertion fails
    ((context_id,),) = rows(database_url, "SELECT id FROM lti_context")
    await refresh_course_roster({}, context_id=str(context_id))
    ((error,),) = rows(database_url, "SELECT roster_error FROM lti_context")
    assert error.startswith("The platform refused the tool's credentials (HTTP 401: invalid_client).")
    page = await client.get(f"{TOOL}/embed/courses/{await course_id_of(database_url)}/students", headers=FRAMED)
    assert "The course roster could not be read: The platform refused the tool&#39;s credentials" in page.text


async def test_a_roster_the_course_did_not_grant_is_told_to_the_instructor_and_the_old_one_kept(
    client: Any, lms: FakeLms, database_url: str
) -> None:
    roster_of(lms)
    lms.offer_roster()
    await launch_as(client, lms, instructor())
    ((context_id,),) = rows(database_url, "SELECT id FROM lti_context")
    await refresh_course_roster({}, context_id=str(context_id))
    lms.roster_forbidden = True
    await refresh_course_roster({}, context_id=str(context_id))
    ((error,),) = rows(database_url, "SELECT roster_error FROM lti_context")
    assert error.startswith("The platform did not let office hours read this course's roster")
    assert rows(database_url, "SELECT count(*) FROM lti_roster_member") == [(4,)]


async def test_the_periodic_job_queues_rosters_that_are_due(client: Any, lms: FakeLms, database_url: str) -> None:
    lms.offer_roster()
    await launch_as(client, lms, instructor())
    assert await refresh_stale_rosters({}) == 1


async def test_the_course_dashboard_lists_booked_waiting_and_not_booked_and_e_mails_the_last(
    client: Any, other_client: Any, lms: FakeLms, database_url: str, mailbox: Any
) -> None:
    from tests.helpers import book, make_slot

    roster_of(lms)
    lms.offer_roster()
    await launch_as(client, lms, instructor())
    for sub, email in (("lms-learner-1", "mia@uni.example"), ("lms-learner-2", "noah@uni.example")):
        async with httpx.AsyncClient(transport=other_client._transport, base_url="http://testserver.local") as tab:
            await launch_as(tab, lms, learner(sub, email=email))
    ((context_id,),) = rows(database_url, "SELECT id FROM lti_context")
    await refresh_course_roster({}, context_id=str(context_id))
    course_id = await course_id_of(database_url)
    professor_id = rows(database_url, "SELECT professor_id FROM lti_context")[0][0]
    mia_id, noah_id = (
        rows(database_url, "SELECT user_id FROM lti_identity WHERE subject = %s", sub)[0][0]
        for sub in ("lms-learner-1", "lms-learner-2")
    )
    from app.services import provide_services

    async with provide_services() as services:
        professor = await services.users.get(professor_id)
        mia, noah = await services.users.get(mia_id), await services.users.get(noah_id)
    slot = await make_slot(professor, course_ids=[course_id])
    await book(mia, slot)
    async with provide_services() as services:
        await services.waitlist.join_slot(noah, slot.id)
    page = await client.get(f"{TOOL}/embed/courses/{course_id}/students", headers=FRAMED)
    assert page.status_code == 200
    lists = {
        title: re.findall(r"<li>([^<(]+)", section)
        for title, section in re.findall(r"<h3>([^<]+) <span.*?</h3>(.*?)</div>", page.text, re.S)
    }
    assert lists == {"Booked": ["Mia Schmidt"], "On a waitlist": ["Noah Weber"], "Not booked yet": ["Lea Braun "]}
    assert "E-mail the 0 who have not booked" in page.text  # Lea never opened office hours: no address here
    # Lea opens office hours once: now she can be e-mailed.
    async with httpx.AsyncClient(transport=other_client._transport, base_url="http://testserver.local") as tab:
        await launch_as(tab, lms, learner("lms-learner-3", email="lea@uni.example"))
    reminded = await client.post(
        f"{TOOL}/embed/courses/{course_id}/remind",
        headers={**FRAMED, "x-csrftoken": client.cookies["csrftoken"], "hx-request": "true"},
    )
    assert reminded.status_code == 200
    assert "E-mailed 1 student who has not booked yet." in reminded.text
    ((notification_id,),) = rows(
        database_url, "SELECT id FROM notification WHERE kind = 'course_office_hours_invitation'"
    )
    await deliver_notification({}, notification_id=str(notification_id))
    (message,) = mailbox.to("lea@uni.example")
    assert message["Subject"] == "Office hours for Algorithms: book a consultation"
    assert f"/professors/{professor_id}" in message.get_body(("plain",)).get_content()


async def test_roster_data_is_only_for_the_courses_instructors(
    client: Any, other_client: Any, lms: FakeLms, database_url: str
) -> None:
    await launch_as(client, lms, instructor())
    course_id = await course_id_of(database_url)
    outsider = await make_user("professor")
    from tests.helpers import web_login

    await web_login(other_client, outsider.username)
    assert (await other_client.get(f"/embed/courses/{course_id}/students")).status_code == 404
    await launch_as(other_client, lms, learner())
    assert (await other_client.get(f"{TOOL}/embed/courses/{course_id}/students", headers=FRAMED)).status_code == 403


async def test_removing_a_platform_removes_its_rosters_and_memberships(
    client: Any, lms: FakeLms, database_url: str
) -> None:
    roster_of(lms)
    lms.offer_roster()
    await launch_as(client, lms, instructor())
    ((context_id,),) = rows(database_url, "SELECT id FROM lti_context")
    await refresh_course_roster({}, context_id=str(context_id))
    (platform_id,) = rows(database_url, "SELECT id FROM lti_platform")[0]
    removed = cli(database_url, "remove", str(platform_id))
    assert removed.returncode == 0, removed.stderr
    for table in ("lti_roster_member", "lti_context", "course_member"):
        assert rows(database_url, f"SELECT count(*) FROM {table}") == [(0,)], table
    assert rows(database_url, "SELECT count(*) FROM course") == [(1,)]  # its reserved slots stay reserved


async def test_the_tools_private_key_is_never_published(client: Any) -> None:
    keys = (await client.get("/lti/jwks")).json()["keys"]
    assert all("d" not in key and "p" not in key for key in keys)


async def test_a_learner_launch_makes_them_a_member_of_the_course(client: Any, lms: FakeLms, database_url: str) -> None:
    await launch_as(client, lms, instructor())
    await launch_as(client, lms, learner())
    assert sorted(r[0] for r in rows(database_url, "SELECT role FROM course_member")) == ["instructor", "learner"]
