"""Every HTML page of the app, as each kind of visitor sees it, on a phone (390 px) and a desktop (1280 px).

Each page is checked for three things: it does not scroll sideways (`documentElement.scrollWidth` is not wider
than `innerWidth`), no element id is used twice, and axe-core finds no serious or critical violation. A failure
names what to fix: the elements that stick out past the right edge, the repeated ids, the rules and their targets.

The data (a professor with slots this week and the next, booked, full, waitlisted and requested ones, past
consultations, a pending request...) is built once for the module through the services; every role signs in
through the real /login page once per width, in one browser.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import psycopg
import pytest

from app.domain.audit.services import AuditAction, AuditService
from app.domain.consultations.models import BookingStatus
from app.services import provide_services
from tests.e2e.conftest import empty_tables, live, new_context, settled, signed_in_context
from tests.helpers import PASSWORD, book, make_slot, make_user, shift_into_past

pytestmark = [pytest.mark.browser, pytest.mark.slow]

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()  # axe-core 4.14.1 from npm
SEVERE = ("serious", "critical")
WIDTHS = (390, 1280)
HEIGHT = {390: 844, 1280: 900}
PAST = timedelta(days=8)  # the past consultations: always in an earlier week than the grid's


@dataclass(frozen=True)
class World:
    professor: Any
    student: Any
    admin: Any
    week: date  # a day in the week the grid shows: every state of a cell is on it
    past_week: date  # a day in the week of the past consultations (the student's local date)
    free_slot: UUID
    requested_booking: UUID
    offer_link: str  # the e-mailed link of a held place (/waitlist/<entry>/accept?t=...)
    request_sequence: int  # the requested booking's version, which an e-mailed action link names


async def build_world(database_url: str) -> World:
    professor = await make_user(
        "professor", first_name="Ada", last_name="Lovelace", department="Mathematics and Computer Science"
    )
    student = await make_user(first_name="Mia", last_name="Nakamura-Oyelaran")
    others = [await make_user(first_name=name, last_name="Student") for name in ("Noah", "Emma", "Liam")]
    admin = await make_user(first_name="Root", last_name="Admin")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE user_account SET is_admin = true WHERE id = %s", (admin.id,))
    async with provide_services() as services:
        await services.users.update_account(professor.id, {"max_active_bookings_per_student": 10, "bio": "Analysis."})
        audit = AuditService(services.session)
        await audit.record(
            admin.id, AuditAction.ROLE_CHANGED, professor.id, {"from": "student", "to": "professor"}, "203.0.113.7"
        )
        await audit.record(student.id, AuditAction.PASSWORD_CHANGED, student.id, {}, "2001:db8:85a3::8a2e:370:7334")

    async def confirm(booking_id: UUID) -> None:
        async with provide_services() as services:
            await services.bookings.confirm(professor, booking_id)

    # Two past consultations a week ago: one held and marked completed (the student may rate it), one still to mark.
    day = datetime.now(UTC).date() + timedelta(days=2)
    past_week = (datetime.now(UTC) - PAST).astimezone(ZoneInfo(student.timezone)).date()

    def at(hour: int, days: int = 0) -> datetime:
        return datetime.combine(day + timedelta(days=days), time(hour), UTC)

    for ago, outcome in ((PAST, BookingStatus.COMPLETED), (PAST - timedelta(hours=2), None)):
        slot = await make_slot(professor, start=at(7, days=20 + ago.days), location="Room 1.01")
        booking = await book(student, slot, "Proofs by induction")
        await confirm(booking.id)
        shift_into_past(database_url, slot.id, hours=ago.total_seconds() / 3600)
        if outcome is not None:
            async with provide_services() as services:
                await services.bookings.mark_outcome(professor, booking.id, outcome)

    # The grid's day: a free slot, a full one, a full one with the student on its waitlist, a place held for the
    # student (an offer), one the student requested (pending: the dashboard's request to answer), one booked.
    free = await make_slot(professor, start=at(8), capacity=2, location="Room 1.01", title="Exam preparation")
    full = await make_slot(professor, start=at(9), capacity=1, location="Room 1.01")
    await confirm((await book(others[0], full, "Series")).id)
    waitlisted = await make_slot(professor, start=at(10), capacity=1, location="Room 1.01")
    await confirm((await book(others[1], waitlisted, "Limits")).id)
    offered = await make_slot(professor, start=at(11), capacity=1, location="Room 1.01")
    given_up = await book(others[2], offered, "Integrals")
    async with provide_services() as services:
        await services.waitlist.join_slot(student, waitlisted.id)
        entry = await services.waitlist.join_slot(student, offered.id)
    async with provide_services() as services:
        await services.bookings.cancel(others[2], given_up.id, "")  # the place goes to the student, held
    async with provide_services() as services:
        entry = await services.waitlist.get(entry.id)
        offer_link = f"/waitlist/{entry.id}/accept?t={entry.offer_nonce}"
    requested = await make_slot(
        professor, start=at(12), capacity=2, location="Online", meeting_url="https://meet.example/ada-lovelace"
    )
    requested_booking = await book(student, requested, "Eigenvalues of symmetric matrices")
    async with provide_services() as services:
        request_sequence = (await services.bookings.get(requested_booking.id)).sequence
    booked = await make_slot(professor, start=at(13), location="Room 1.01")
    await confirm((await book(student, booked, "Linear maps")).id)
    # More free slots on the next days and in the week after.
    for days, hour in ((1, 8), (3, 9), (7, 8), (8, 10)):
        await make_slot(professor, start=at(hour, days=days), capacity=3, location="Room 1.01")
    return World(
        professor=professor,
        student=student,
        admin=admin,
        week=day,
        past_week=past_week,
        free_slot=free.id,
        requested_booking=requested_booking.id,
        offer_link=offer_link,
        request_sequence=request_sequence,
    )


@pytest.fixture(autouse=True)
def clean_tables() -> None:
    """Replaces the per-test emptying of the tables: the data here is built once and emptied after the module."""


@pytest.fixture(scope="module")
async def world(live_server: str, database_url: str) -> AsyncIterator[World]:
    yield await build_world(database_url)
    empty_tables(database_url)


class Contexts:
    """One browser context per role and width, signed in once through /login, made when first needed."""

    def __init__(self, browser: Any, base_url: str, world: World) -> None:
        self.browser, self.base_url, self.world = browser, base_url, world
        self.made: dict[tuple[str, int], Any] = {}

    async def get(self, role: str, width: int) -> Any:
        if (role, width) not in self.made:
            size = {"width": width, "height": HEIGHT[width]}
            if role == "anonymous":
                context = await new_context(self.browser, self.base_url, **size)
            else:
                user = getattr(self.world, role)
                context = await signed_in_context(self.browser, self.base_url, user.username, PASSWORD, **size)
            self.made[role, width] = context
        return self.made[role, width]

    async def close(self) -> None:
        for context in self.made.values():
            await context.close()


@pytest.fixture(scope="module")
async def contexts(browser: Any, live_server: str, world: World) -> AsyncIterator[Contexts]:
    made = Contexts(browser, live_server, world)
    yield made
    await made.close()


# -- the pages -----------------------------------------------------------------------------------------------------

Opener = Callable[[Any, World], Awaitable[None]]


async def go(page: Any, path: str, status: int = 200) -> None:
    response = await page.goto(path)
    assert response is not None
    assert response.status == status, f"{path} answered {response.status}"
    await live(page)


def plain(path: str | Callable[[World], str], status: int = 200) -> Opener:
    async def open_page(page: Any, world: World) -> None:
        await go(page, path(world) if callable(path) else path, status)

    return open_page


def grid_path(world: World, prefix: str = "") -> str:
    return f"{prefix}/professors/{world.professor.id}?week={world.week.isoformat()}"


async def grid(page: Any, world: World) -> None:
    await go(page, grid_path(world))
    for state in ("free", "full", "offered", "requested", "booked"):
        await page.locator(f".slot-cell.is-{state}").first.wait_for()


async def past_grid(page: Any, world: World) -> None:
    await go(page, f"/professors/{world.professor.id}?week={world.past_week.isoformat()}")
    await page.locator(".slot-cell.is-past").first.wait_for()


async def booking_dialog(page: Any, world: World) -> None:
    await grid(page, world)
    await page.locator(f"#slot-{world.free_slot} button").click()
    await page.locator("dialog[open]").wait_for()
    await settled(page)


async def embedded_grid(page: Any, world: World) -> None:
    await go(page, grid_path(world, "/embed"))
    await page.locator(f"#slot-{world.free_slot}.is-free").wait_for()


async def embedded_sign_in(page: Any, world: World) -> None:
    async with page.expect_response(lambda response: "/embed/probe" in response.url):
        await go(page, f"/embed/professors/{world.professor.id}")
    await settled(page)


async def sign_in_redirect(page: Any, world: World) -> None:
    await page.goto("/bookings")
    await page.wait_for_url(lambda url: "/login?next=" in url and "bookings" in url)
    await page.get_by_role("button", name="Sign in", exact=True).wait_for()


async def waitlist(page: Any, world: World) -> None:
    response = await page.goto("/waitlist")
    if response is not None and response.status == 404:
        pytest.skip("there is no /waitlist page (it answers 404)")
    assert response is not None
    assert response.status == 200, f"/waitlist answered {response.status}"
    await live(page)


async def dashboard(page: Any, world: World, path: str = "/dashboard") -> None:
    await go(page, path)
    await page.locator("#pending .dash-booking").first.wait_for()
    await page.locator("#stats-panel .stat-cards").wait_for()
    await settled(page)


async def embedded_dashboard(page: Any, world: World) -> None:
    await dashboard(page, world, "/embed/dashboard")


async def inline_edit(page: Any, world: World) -> None:
    await dashboard(page, world)
    await page.locator(f"#slot-row-{world.free_slot}").get_by_role("button", name="Edit").click()
    await page.locator("form.inline-edit").wait_for()
    await settled(page)


async def generator_preview(page: Any, world: World) -> None:
    await dashboard(page, world)
    await page.get_by_role("button", name=re.compile(r"^Preview")).click()
    await page.locator("#bulk-result").get_by_text("Preview:").wait_for()
    await settled(page)


async def stats(page: Any, world: World) -> None:
    await go(page, "/dashboard/stats")
    await page.locator("#stats-panel .stat-cards").wait_for()


def action_link(action: str) -> Callable[[World], str]:
    """The page a booking e-mail's signed link opens (signed out, the link is the authority)."""

    def path(world: World) -> str:
        from app.config import get_settings
        from app.domain.consultations.links import ActionLink, LinkAction, sign

        to = world.professor if action == "decline" else world.student
        expires = datetime.now(UTC) + timedelta(days=1)
        link = ActionLink(LinkAction(action), world.requested_booking, to.id, world.request_sequence, expires)
        return f"/actions/{sign(link, get_settings().secret_key)}"

    return path


def mailed_account_link(which: str) -> Callable[[World], str]:
    """The page an account e-mail's signed link opens (confirm the address, unlock the account), signed out."""

    def path(world: World) -> str:
        from app.config import get_settings
        from app.domain.accounts.emails import unlock_url
        from app.domain.accounts.verification import verify_url

        settings = get_settings()
        url = verify_url(world.student, settings) if which == "verify" else unlock_url(world.student, settings)
        return url.removeprefix(settings.app_url)

    return path


@dataclass(frozen=True)
class Shown:
    role: str
    name: str
    open: Opener


PAGES = (
    Shown("anonymous", "home", plain("/")),
    Shown("anonymous", "login", plain("/login")),
    Shown("anonymous", "register", plain("/register")),
    Shown("anonymous", "not-found", plain("/no-such-page", status=404)),
    Shown("anonymous", "sign-in-redirect", sign_in_redirect),
    Shown("anonymous", "embed-sign-in", embedded_sign_in),
    Shown("anonymous", "e-mailed-decline-link", plain(action_link("decline"))),
    Shown("anonymous", "e-mailed-manage-link", plain(action_link("manage"))),
    Shown("anonymous", "e-mailed-address-confirmation", plain(mailed_account_link("verify"))),
    Shown("anonymous", "e-mailed-unlock-link", plain(mailed_account_link("unlock"))),
    Shown("student", "professors", plain("/professors")),
    Shown("student", "grid", grid),
    Shown("student", "grid-past-week", past_grid),
    Shown("student", "booking-dialog", booking_dialog),
    Shown("student", "bookings-upcoming", plain("/bookings")),
    Shown("student", "bookings-past", plain("/bookings?tab=past")),
    Shown("student", "booking", plain(lambda world: f"/bookings/{world.requested_booking}")),
    Shown("student", "settings", plain("/settings")),
    Shown("student", "waitlist", waitlist),
    Shown("student", "waitlist-offer-link", plain(lambda world: world.offer_link)),
    Shown("student", "embed-grid", embedded_grid),
    Shown("professor", "dashboard", dashboard),
    Shown("professor", "dashboard-inline-edit", inline_edit),
    Shown("professor", "dashboard-generator-preview", generator_preview),
    Shown("professor", "stats", stats),
    Shown("professor", "settings", plain("/settings")),
    Shown("professor", "booking", plain(lambda world: f"/bookings/{world.requested_booking}")),
    Shown("professor", "embed-dashboard", embedded_dashboard),
    Shown("admin", "admin-home", plain("/admin")),
    Shown("admin", "admin-account", plain(lambda world: f"/admin/users/{world.professor.id}")),
    Shown("admin", "admin-audit", plain("/admin/audit")),
    Shown("student", "my-data", plain("/settings/data")),
    Shown("admin", "admin-notifications", plain("/admin/notifications?status=all")),
    Shown("admin", "dev-mailbox", plain("/dev/mail")),
    Shown("admin", "admin-lms-platforms", plain("/admin/lti")),
)
CASES = [(shown, width) for width in WIDTHS for shown in PAGES]


@pytest.fixture(scope="module", params=CASES, ids=[f"{shown.role}-{shown.name}-{width}" for shown, width in CASES])
async def page(request: pytest.FixtureRequest, contexts: Contexts, world: World) -> AsyncIterator[Any]:
    """The page opened as its role at its width, ready (streams live, htmx settled, the dialog open...)."""
    shown, width = request.param
    opened = await (await contexts.get(shown.role, width)).new_page()
    try:
        await shown.open(opened, world)
        yield opened
    finally:
        await opened.close()


# -- the checks ----------------------------------------------------------------------------------------------------

# Elements whose right edge is past the viewport's, leaving out those a scrolling or clipping box (or a fixed
# position) keeps from widening the page. "outermost": its parent still fits; "innermost": no child sticks out.
STICKING_OUT = """() => {
  const limit = window.innerWidth;
  const root = document.documentElement;
  const held = el => {
    for (let node = el; node && node !== document.body && node !== root; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (style.position === "fixed") return true;
      if (node !== el && style.overflowX !== "visible") return true;
    }
    return false;
  };
  const name = el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (typeof el.className === "string" && el.className.trim() ? "." + el.className.trim().split(/\\s+/).join(".") : "");
  const found = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if ((box.width === 0 && box.height === 0) || box.right <= limit + 0.5 || held(el)) continue;
    found.push({el: el, element: name(el), right: Math.round(box.right), width: Math.round(box.width),
      text: (el.innerText || el.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 40)});
  }
  const out = new Set(found.map(item => item.el));
  for (const item of found) {
    item.outermost = !out.has(item.el.parentElement);
    item.innermost = ![...item.el.children].some(child => out.has(child));
    delete item.el;
  }
  found.sort((a, b) => b.right - a.right);
  return {scrollWidth: root.scrollWidth, innerWidth: limit, found: found};
}"""

REPEATED_IDS = """() => {
  const seen = new Map();
  for (const el of document.querySelectorAll("[id]")) {
    seen.set(el.id, [...(seen.get(el.id) || []), el.tagName.toLowerCase()]);
  }
  return [...seen].filter(([, tags]) => tags.length > 1).map(([id, tags]) => ({id: id, tags: tags}));
}"""


# Each node named by its selector, the classes of the closest element with an id around it (a grid cell's state...),
# and for contrast the colours axe measured.
AXE_RUN = """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations.map(v => ({
  id: v.id, impact: v.impact, help: v.help,
  nodes: v.nodes.map(n => {
    const el = document.querySelector(n.target[n.target.length - 1]);
    const around = el && el.parentElement && el.parentElement.closest("[id][class]");
    const data = [...n.any, ...n.all, ...n.none].map(c => c.data).find(d => d && d.contrastRatio);
    return n.target.join(" ")
      + (around ? ` in <${around.tagName.toLowerCase()} class="${around.getAttribute("class")}">` : "")
      + (data ? ` (${data.fgColor} on ${data.bgColor}: ${data.contrastRatio}, needs ${data.expectedContrastRatio})` : "");
  }),
}))"""


def describe(element: dict[str, Any]) -> str:
    text = f' "{element["text"]}"' if element["text"] else ""
    return f"{element['element']} (right edge {element['right']} px, {element['width']} px wide){text}"


async def test_the_page_does_not_scroll_sideways(page: Any) -> None:
    layout = await page.evaluate(STICKING_OUT)
    if layout["scrollWidth"] <= layout["innerWidth"]:
        return
    found = layout["found"]
    outermost = [describe(e) for e in found if e["outermost"]][:6]
    innermost = [describe(e) for e in found if e["innermost"]][:8]
    pytest.fail(
        f"{page.url} scrolls sideways: scrollWidth {layout['scrollWidth']} px > innerWidth {layout['innerWidth']} px;"
        f" {len(found)} element(s) stick out past the right edge, widest first."
        "\nOutermost (the parent still fits):\n  "
        + "\n  ".join(outermost or ["(none)"])
        + "\nInnermost (no child sticks out):\n  "
        + "\n  ".join(innermost or ["(none)"]),
        pytrace=False,
    )


async def test_no_element_id_is_used_twice(page: Any) -> None:
    repeated = await page.evaluate(REPEATED_IDS)
    if repeated:
        listed = "\n  ".join(f"#{item['id']} x{len(item['tags'])} ({', '.join(item['tags'])})" for item in repeated)
        pytest.fail(f"{page.url} repeats element ids:\n  {listed}", pytrace=False)


async def test_axe_finds_no_serious_or_critical_violation(page: Any) -> None:
    # Evaluated through the DevTools protocol: the page's CSP (no inline scripts) stays as it is.
    await page.evaluate(AXE)
    violations = await page.evaluate(AXE_RUN)
    severe = [v for v in violations if v["impact"] in SEVERE]
    if severe:
        listed = "\n  ".join(
            f"{v['id']} ({v['impact']}: {v['help']}) on {len(v['nodes'])} element(s):\n    "
            + "\n    ".join(v["nodes"][:6])
            + ("\n    ..." if len(v["nodes"]) > 6 else "")
            for v in severe
        )
        pytest.fail(f"{page.url}: axe-core finds\n  {listed}", pytrace=False)
