"""LTI Advantage driven by lti1p3platform (tests/independent_platform.py), not by this project's own fake platform:
the deep-linking launch, the chooser, the signed answer verified by that library, and the placed link's launch; the
course roster fetched with a client assertion that library verifies, page by page from its membership service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.config import get_settings
from app.domain.lti.platforms import PlatformService
from app.domain.lti.roster import service_tokens
from app.domain.lti.schemas import PlatformRegistration
from app.lib.jwks import jwks_cache
from app.services import provide_services
from app.worker import refresh_course_roster
from tests.conftest import free_port
from tests.fake_lms import member
from tests.helpers import make_user
from tests.independent_platform import CLIENT_ID, DEPLOYMENT_ID, IndependentPlatform, IndependentPlatformServer, person
from tests.integration.test_lti import FRAMED, TOOL, authenticate
from tests.integration.test_lti_advantage import post_answer, rows


@pytest.fixture
async def platform(database_url: str, client: Any) -> AsyncIterator[IndependentPlatform]:
    jwks_cache.forget()
    service_tokens.cached.clear()
    server = IndependentPlatformServer(free_port(), get_settings().app_url, login_url=f"{TOOL}/lti/login")
    platform = server.start()
    platform.trust_tool_keys((await client.get("/lti/jwks")).json())
    async with provide_services() as services:
        await PlatformService(session=services.session).register(
            PlatformRegistration(
                issuer=platform.issuer,
                client_id=CLIENT_ID,
                deployment_ids=(DEPLOYMENT_ID,),
                auth_login_url=f"{platform.issuer}/auth",
                jwks_url=f"{platform.issuer}/jwks",
                token_url=f"{platform.issuer}/token",
                name="lti1p3platform",
            )
        )
    yield platform
    server.stop()


async def launch_from(client: Any, platform: IndependentPlatform, login_hint: str) -> httpx.Response:
    started = await client.get(platform.login_url_for(login_hint), headers=FRAMED)
    assert started.status_code == 302, started.text
    form = await authenticate(started.headers["location"])
    return await client.post(f"{TOOL}/lti/launch", data=form, headers=FRAMED)


async def test_a_deep_linking_launch_from_lti1p3platform_places_the_chosen_office_hours(
    client: Any, other_client: Any, platform: IndependentPlatform
) -> None:
    colleague = await make_user("professor", first_name="Grace", last_name="Hopper")
    platform.people["teacher-7"] = person("teacher-7", "Instructor", "Barbara Liskov", "liskov@uni.example")
    platform.deep_linking = True
    launched = await launch_from(client, platform, "teacher-7")
    assert launched.status_code == 303, launched.text
    chooser_url = launched.headers["location"].split("?")[0]
    assert chooser_url.startswith("/embed/deep-link/")
    chooser = await client.get(f"{TOOL}{chooser_url}", headers=FRAMED)
    assert "Barbara Liskov (you)" in chooser.text
    answer = await client.post(
        f"{TOOL}{chooser_url}",
        data={"professor_ids": [str(colleague.id)], "_csrf_token": client.cookies["csrftoken"]},
        headers=FRAMED,
    )
    assert answer.status_code == 200, answer.text
    assert await post_answer(answer.text) == f"{platform.issuer}/deep-link-return"
    (item,) = platform.content_items  # verified by lti1p3platform with the tool's published keys
    assert item["type"] == "ltiResourceLink"
    assert item["custom"] == {"professor": str(colleague.id)}
    # The placed link, launched by a learner from lti1p3platform, opens exactly that professor's week.
    platform.deep_linking = False
    platform.custom = item["custom"]
    platform.people["student-7"] = person("student-7", "Learner", "Edsger Dijkstra", "ewd@uni.example")
    response = await launch_from(other_client, platform, "student-7")
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith(f"/embed/professors/{colleague.id}?launch=")


async def test_the_course_roster_comes_from_lti1p3platforms_membership_service_page_by_page(
    client: Any, platform: IndependentPlatform, database_url: str
) -> None:
    platform.people["teacher-7"] = person("teacher-7", "Instructor", "Barbara Liskov", "liskov@uni.example")
    platform.roster = [
        member("teacher-7", "Instructor", "Barbara Liskov", "liskov@uni.example"),
        member("student-1", "Learner", "Mia Schmidt", "mia@uni.example"),
        member("student-2", "Learner", "Noah Weber", "noah@uni.example"),
        member("student-3", "Learner", "Lea Braun", "lea@uni.example"),
        member("student-4", "Learner", "Ben Gone", "ben@uni.example", status="Inactive"),
    ]
    launched = await launch_from(client, platform, "teacher-7")
    assert launched.status_code == 303, launched.text
    ((context_id,),) = rows(database_url, "SELECT id FROM lti_context")
    # The token endpoint granted a token only for a client assertion lti1p3platform verified with the tool's keys,
    # and the membership service answered only that token, in pages of two.
    assert await refresh_course_roster({}, context_id=str(context_id)) == 4
    assert platform.membership_pages == [1, 2, 3]
    assert rows(database_url, "SELECT subject, role FROM lti_roster_member ORDER BY subject") == [
        ("student-1", "learner"),
        ("student-2", "learner"),
        ("student-3", "learner"),
        ("teacher-7", "instructor"),
    ]


async def test_a_client_assertion_lti1p3platform_cannot_verify_gets_no_roster_and_the_instructor_is_told(
    client: Any, platform: IndependentPlatform, database_url: str
) -> None:
    platform.people["teacher-7"] = person("teacher-7", "Instructor", "Barbara Liskov", "liskov@uni.example")
    platform.roster = [member("student-1", "Learner", "Mia Schmidt", "mia@uni.example")]
    await launch_from(client, platform, "teacher-7")
    platform.trust_tool_keys({"keys": []})  # the platform no longer knows the tool's key
    ((context_id,),) = rows(database_url, "SELECT id FROM lti_context")
    assert await refresh_course_roster({}, context_id=str(context_id)) == 0
    assert platform.membership_pages == []
    ((error,),) = rows(database_url, "SELECT roster_error FROM lti_context")
    assert error.startswith("The platform refused the tool's credentials (HTTP 401: invalid_client).")
