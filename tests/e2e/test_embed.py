"""The embed views inside another site's frame, in a real browser.

The app runs at http://127.0.0.1:<port>; the sites that frame it are other origins on loopback
(http://localhost:<port>), so the frame is cross-site as in an LMS, and its cookies must be partitioned ones.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from app.config import get_settings
from app.lib.clock import monday_of, today_in
from tests.conftest import free_port, start_server, wait_until_up
from tests.fake_lms import FakeLms, FakeLmsServer, instructor, learner, register_platform
from tests.helpers import PASSWORD, in_hours, make_slot, make_user

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The host page records the frame's resize requests, as Canvas and Moodle act on them.
HOST_PAGE = """<!doctype html><title>Course</title>
<script>window.resizes = []; window.addEventListener("message", function (e) {
  if (e.data && e.data.subject === "lti.frameResize") window.resizes.push(e.data.height); });</script>
<iframe src="%s" width="1000" height="700"></iframe>"""


@dataclass(frozen=True)
class EmbedSite:
    app_url: str
    allowed_port: int  # http://localhost:<allowed_port> is in FRAME_ANCESTORS


@pytest.fixture(scope="module")
def embed_site(database_url: str) -> Iterator[EmbedSite]:
    """The app in its own process, with FRAME_ANCESTORS naming one other origin (and APP_URL its own address)."""
    port, allowed_port = free_port(), free_port()
    app_url = f"http://127.0.0.1:{port}"
    process = start_server(database_url, port, APP_URL=app_url, FRAME_ANCESTORS=f"http://localhost:{allowed_port}")
    try:
        wait_until_up(app_url, process)
        yield EmbedSite(app_url=app_url, allowed_port=allowed_port)
    finally:
        process.terminate()
        process.wait(timeout=15)


@contextmanager
def host_page(port: int, frame_url: str) -> Iterator[str]:
    """Another site's page, http://localhost:<port>/, whose content is a frame of `frame_url`."""
    body = (HOST_PAGE % frame_url).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{port}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    yield await context.new_page()
    await context.close()


async def test_a_student_signs_in_and_books_inside_an_allowed_frame(
    page: Any, embed_site: EmbedSite, database_url: str
) -> None:
    professor = await make_user("professor", first_name="Ada", last_name="Lovelace")
    student = await make_user(first_name="Mia")
    slot = await make_slot(professor, capacity=1, location="Room 1")
    view = f"{embed_site.app_url}/embed/professors/{professor.id}?week={slot.start_time.date().isoformat()}"
    with host_page(embed_site.allowed_port, view) as host:
        await page.goto(host)
        frame = page.frame_locator("iframe")
        await frame.get_by_label("Username or email").fill(student.username)
        await frame.get_by_label("Password").fill(PASSWORD)
        await frame.get_by_role("button", name="Sign in").click()
        await frame.locator(f"#slot-{slot.id}.is-free").wait_for()
        await frame.locator("body[data-live='on']").wait_for()
        await frame.locator(f"#slot-{slot.id} button").click()
        await frame.get_by_label("What would you like to discuss?").fill("Analytical engines")
        await frame.get_by_role("button", name="Request this slot").click()
        await frame.locator(f"#slot-{slot.id}.is-requested").wait_for(timeout=5000)
        assert "Requested: waiting for the professor's answer" in await frame.locator(f"#slot-{slot.id}").inner_text()
    with psycopg.connect(database_url) as conn:
        booked = conn.execute("SELECT student_id, topic FROM booking WHERE slot_id = %s", (slot.id,)).fetchall()
    assert booked == [(student.id, "Analytical engines")]


async def test_the_frame_asks_the_host_page_for_its_height(page: Any, embed_site: EmbedSite) -> None:
    professor = await make_user("professor")
    with host_page(embed_site.allowed_port, f"{embed_site.app_url}/embed/professors/{professor.id}") as host:
        await page.goto(host)
        await page.frame_locator("iframe").get_by_role("button", name="Sign in").wait_for()
        await page.wait_for_function("window.resizes.length > 0")
        heights = await page.evaluate("window.resizes")
    assert all(isinstance(height, int) and height > 0 for height in heights)


async def test_a_site_not_in_frame_ancestors_cannot_frame_the_view(page: Any, embed_site: EmbedSite) -> None:
    professor = await make_user("professor")
    view = f"{embed_site.app_url}/embed/professors/{professor.id}"
    allowed = f"http://localhost:{embed_site.allowed_port}"
    directive = f'violates the following Content Security Policy directive: "frame-ancestors {allowed}"'
    with host_page(free_port(), view) as host:
        # The browser's report of the refusal is the signal that the frame is settled (no fixed wait).
        async with page.expect_console_message(lambda message: directive in message.text):
            await page.goto(host, wait_until="load")
        # The report can come a moment before the frame has switched to the browser's error page: wait for that.
        await page.wait_for_function("() => window.frames.length === 1")
        for _ in range(50):
            if page.frames[1].url == "chrome-error://chromewebdata/":
                break
            await page.wait_for_timeout(100)
        assert page.frames[1].url == "chrome-error://chromewebdata/"  # the browser's error page, no app content
        assert await page.frame_locator("iframe").get_by_text("Sign in to office hours").count() == 0


async def test_a_learner_launched_from_the_lms_books_inside_its_frame(
    page: Any, embed_site: EmbedSite, database_url: str
) -> None:
    professor = await make_user("professor", first_name="Ada", last_name="Lovelace")
    slot = await make_slot(professor, start=in_hours(3), capacity=2)
    person_zone = get_settings().default_timezone  # a new account's, so the grid's
    server = FakeLmsServer(free_port(), embed_site.app_url)
    lms: FakeLms = server.start()
    try:
        await register_platform(lms)
        person = learner(email="mia@uni.example")
        lms.people[person.sub] = person
        lms.custom = {"professor": professor.username}
        await page.goto(f"{lms.issuer}/course/{person.sub}")
        frame = page.frame_locator("iframe")
        await frame.locator("#week-title").wait_for()
        if monday_of(slot.start_time.astimezone(ZoneInfo(person_zone)).date()) != monday_of(today_in(person_zone)):
            await frame.get_by_role("button", name="Next week").click()
        await frame.locator(f"#slot-{slot.id}.is-free").wait_for()
        await frame.locator("body[data-live='on']").wait_for()
        await frame.locator(f"#slot-{slot.id} button").click()
        await frame.get_by_role("button", name="Request this slot").click()
        await frame.locator(f"#slot-{slot.id}.is-requested").wait_for(timeout=5000)
    finally:
        server.stop()
    with psycopg.connect(database_url) as conn:
        booked = conn.execute(
            "SELECT u.email FROM booking b JOIN user_account u ON u.id = b.student_id WHERE b.slot_id = %s", (slot.id,)
        ).fetchall()
    assert booked == [("mia@uni.example",)]


async def test_a_launch_whose_state_cookie_was_not_kept_completes_through_the_platforms_storage(
    page: Any, embed_site: EmbedSite
) -> None:
    server = FakeLmsServer(free_port(), embed_site.app_url)
    lms: FakeLms = server.start()
    try:
        await register_platform(lms)
        person = instructor()
        lms.people[person.sub] = person

        async def forget_cookies(route: Any) -> None:
            await page.context.clear_cookies()  # the state cookie is gone, as in a browser that keeps none here
            await route.continue_()

        await page.route(f"{lms.auth_url}?*", forget_cookies)
        verified: list[str] = []
        page.on(
            "request", lambda request: verified.append(request.url) if "/lti/launch/verify" in request.url else None
        )
        await page.goto(f"{lms.issuer}/course/{person.sub}?storage=true")
        await page.frame_locator("iframe").get_by_role("heading", name="Dashboard").wait_for()
    finally:
        server.stop()
    assert verified == [f"{embed_site.app_url}/lti/launch/verify"]
