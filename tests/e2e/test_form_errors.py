"""Every web form, given a bad submission in the real browser: the message shows in the page, what was typed stays,
and the message names the field in words.

"Names the field in words" holds when the message is the field's own description (its `aria-describedby`
element, beside its label), or else when the message contains the field's label; and never when the message uses a
code name (`topic:`, `meeting_url`, `end_date`). What was typed is checked in every field filled in, the field in
error too (so it can be corrected) unless it is a password.

The data is built once for the module; each form is submitted once, and the three checks look at that page.
"""

from __future__ import annotations

import re
import time as clock
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

import pytest
from playwright.async_api import expect

from app.domain.consultations.models import BookingStatus
from app.services import provide_services
from tests.e2e.conftest import empty_tables, live, new_context, settled, signed_in_context
from tests.helpers import PASSWORD, book, make_slot, make_user, shift_into_past

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MESSAGES = "[role=alert], .field-error, .flash-error, .slot-refusal, .error"
SNAKE_CASE = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")
# The label's own words: the text of a <label> (or <legend>) without the control, hint or error inside it.
LABEL_OF = """el => {
  const words = node => {
    const copy = node.cloneNode(true);
    copy.querySelectorAll("input, select, textarea, small, .hint, .muted, .field-error").forEach(n => n.remove());
    return copy.textContent.replace(/\\s+/g, " ").trim();
  };
  if (el.labels && el.labels.length && el.type !== "radio") return words(el.labels[0]);
  const legend = (el.tagName === "FIELDSET" ? el : el.closest("fieldset"))?.querySelector("legend");
  if (legend) return words(legend);
  return el.getAttribute("aria-label") || el.getAttribute("placeholder") || "";
}"""


@dataclass(frozen=True)
class Data:
    professor: Any
    student: Any
    stranger: Any  # a student whose sign-ins fail here
    week: date
    dialog_slot: UUID
    edit_slot: UUID
    request: UUID  # a pending request (from the stranger) on the professor's slot
    request_sequence: int
    completed: UUID  # the student's consultation, held and marked completed: it may be rated
    upcoming: UUID  # the student's upcoming booking (its page offers to move it)


async def build_data(database_url: str) -> Data:
    professor = await make_user("professor", first_name="Grace", last_name="Hopper", department="Engineering")
    student = await make_user(first_name="Mia", last_name="Student")
    stranger = await make_user(first_name="Noah", last_name="Student")
    day = datetime.now(UTC).date() + timedelta(days=2)

    def at(hour: int, days: int = 0) -> datetime:
        return datetime.combine(day + timedelta(days=days), time(hour), UTC)

    held = await make_slot(professor, start=at(7, days=20), location="Room 2")
    completed = await book(student, held, "Compilers")
    async with provide_services() as services:
        await services.bookings.confirm(professor, completed.id)
    shift_into_past(database_url, held.id, hours=3)
    async with provide_services() as services:
        await services.bookings.mark_outcome(professor, completed.id, BookingStatus.COMPLETED)
    dialog_slot = await make_slot(professor, start=at(8), capacity=2, location="Room 2")
    edit_slot = await make_slot(professor, start=at(9), capacity=2, location="Room 2", notes="Bring the exercise")
    requested = await make_slot(professor, start=at(10), capacity=2, location="Room 2")
    request = await book(stranger, requested, "Debugging")
    upcoming = await book(student, await make_slot(professor, start=at(11), location="Room 2"), "Linkers")
    await make_slot(professor, start=at(12), location="Room 2")  # a free time to move to
    async with provide_services() as services:
        request = await services.bookings.get(request.id)
    return Data(
        professor=professor,
        student=student,
        stranger=stranger,
        week=day,
        dialog_slot=dialog_slot.id,
        edit_slot=edit_slot.id,
        request=request.id,
        request_sequence=request.sequence,
        completed=completed.id,
        upcoming=upcoming.id,
    )


@pytest.fixture(autouse=True)
def clean_tables() -> None:
    """Replaces the per-test emptying of the tables: the data here is built once and emptied after the module."""


@pytest.fixture(scope="module")
async def data(live_server: str, database_url: str) -> AsyncIterator[Data]:
    yield await build_data(database_url)
    empty_tables(database_url)


@pytest.fixture(scope="module")
async def contexts(browser: Any, live_server: str, data: Data) -> AsyncIterator[dict[str, Any]]:
    made = {
        "anonymous": await new_context(browser, live_server),
        "student": await signed_in_context(browser, live_server, data.student.username, PASSWORD),
        "professor": await signed_in_context(browser, live_server, data.professor.username, PASSWORD),
    }
    yield made
    for context in made.values():
        await context.close()


# -- the forms -----------------------------------------------------------------------------------------------------

Prepare = Callable[[Any, Data], Awaitable[None]]


async def nothing_to_prepare(page: Any, data: Data) -> None:
    return None


@dataclass(frozen=True)
class FormCase:
    name: str
    role: str
    path: Callable[[Data], str]
    form: Callable[[Data], str]  # CSS of the form
    field: str  # CSS, inside the form, of the field the message is about
    typed: Callable[[Data], dict[str, str]]  # field name -> what is typed into it
    prepare: Prepare = nothing_to_prepare  # after the page opened: open the dialog, the row editor...
    passwords: tuple[str, ...] = field(default=())  # typed fields a page may rightly empty


def days_from_now(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


async def open_booking_dialog(page: Any, data: Data) -> None:
    await page.locator(f"#slot-{data.dialog_slot} button").click()
    await page.locator("dialog[open]").wait_for()
    await settled(page)
    # The browser stops typing at maxlength=500; an older browser, a script or the API can send more.
    await page.locator("dialog[open] [name=topic]").evaluate("el => el.removeAttribute('maxlength')")


async def open_row_editor(page: Any, data: Data) -> None:
    await page.locator(f"#slot-row-{data.edit_slot}").get_by_role("button", name="Edit").click()
    await page.locator(f"#slot-row-{data.edit_slot} form").wait_for()
    await settled(page)


async def open_feedback(page: Any, data: Data) -> None:
    await page.locator(f"#booking-{data.completed} summary").click()
    await page.locator(f"#booking-{data.completed} [name=student_feedback]").wait_for()


def decline_link(data: Data) -> str:
    from app.config import get_settings
    from app.domain.consultations.links import ActionLink, LinkAction, sign

    link = ActionLink(
        LinkAction.DECLINE,
        data.request,
        data.professor.id,
        data.request_sequence,
        datetime.now(UTC) + timedelta(days=1),
    )
    return f"/actions/{sign(link, get_settings().secret_key)}"


TOPIC = ("Eigenvalues of symmetric matrices, and why they are real. " * 10)[:520]
NEW_PASSWORD = "a-brand-new-password-42"

CASES = (
    FormCase(
        "sign-in-wrong-password",
        "anonymous",
        lambda data: "/login",
        lambda data: "form[action='/login']",
        "[name=password]",
        lambda data: {"username": data.stranger.username, "password": "not-the-password-1"},
        passwords=("password",),
    ),
    FormCase(
        "registration-taken-username",
        "anonymous",
        lambda data: "/register",
        lambda data: "form[action='/register']",
        "[name=username]",
        lambda data: {
            "first_name": "Ida",
            "last_name": "Rhodes",
            "username": data.student.username,
            "email": "ida.rhodes@uni.example",
            "password": "correct-horse-battery-staple",
        },
        passwords=("password",),
    ),
    FormCase(
        "registration-short-password",
        "anonymous",
        lambda data: "/register",
        lambda data: "form[action='/register']",
        "[name=password]",
        lambda data: {
            "first_name": "Ida",
            "last_name": "Rhodes",
            "username": "ida.rhodes",
            "email": "ida.rhodes@uni.example",
            "password": "short",
        },
        passwords=("password",),
    ),
    FormCase(
        "profile-settings-bad-email",
        "student",
        lambda data: "/settings",
        lambda data: "form[action='/settings/profile']",
        "[name=email]",
        lambda data: {"first_name": "Mia-Sophie", "phone_number": "+49 30 1234567", "email": "not-an-email"},
    ),
    FormCase(
        "password-change-wrong-current-password",
        "student",
        lambda data: "/settings",
        lambda data: "form[action='/settings/password']",
        "[name=current_password]",
        lambda data: {"current_password": "not-my-password-1", "new_password": NEW_PASSWORD},
        passwords=("current_password", "new_password"),
    ),
    FormCase(
        "booking-dialog-topic-over-500-characters",
        "student",
        lambda data: f"/professors/{data.professor.id}?week={data.week.isoformat()}",
        lambda data: "#dialog-host form",
        "[name=topic]",
        lambda data: {"topic": TOPIC},
        prepare=open_booking_dialog,
    ),
    FormCase(
        "slot-generator-end-date-before-start",
        "professor",
        lambda data: "/dashboard",
        lambda data: "form[hx-post='/dashboard/slots/bulk']",
        "[name=end_date]",
        lambda data: {
            "start_date": days_from_now(10),
            "end_date": days_from_now(3),
            "duration_minutes": "45",
            "capacity": "2",
            "location": "Room 9",
        },
    ),
    FormCase(
        "one-slot-time-in-the-past",
        "professor",
        lambda data: "/dashboard",
        lambda data: "form[hx-post='/dashboard/slots']",
        "[name=start]",
        lambda data: {
            "date": days_from_now(-2),
            "start": "10:00",
            "end": "10:30",
            "capacity": "2",
            "location": "Room 5",
            "title": "Office hour",
        },
    ),
    FormCase(
        "inline-slot-edit-capacity-0",
        "professor",
        lambda data: "/dashboard",
        lambda data: f"#slot-row-{data.edit_slot} form",
        "[name=capacity]",
        lambda data: {"capacity": "0", "location": "Room 7", "notes": "Bring your notes"},
        prepare=open_row_editor,
    ),
    FormCase(
        "decline-with-empty-reason",
        "professor",
        lambda data: "/dashboard",
        lambda data: f"#pending [id='dash-booking-{data.request}'] form",
        "[name=reason]",
        lambda data: {},
    ),
    FormCase(
        "feedback-without-rating",
        "student",
        lambda data: "/bookings?tab=past",
        lambda data: f"#booking-{data.completed} form",
        "[name=rating]",
        lambda data: {"student_feedback": "Very helpful, thank you."},
        prepare=open_feedback,
    ),
    FormCase(
        "embedded-sign-in-wrong-password",
        "anonymous",
        lambda data: f"/embed/professors/{data.professor.id}",
        lambda data: "form[action='/embed/login']",
        "[name=password]",
        lambda data: {"username": data.stranger.username, "password": "not-the-password-2"},
        passwords=("password",),
    ),
    FormCase(
        "booking-page-private-notes-over-10000-characters",
        "professor",
        lambda data: f"/bookings/{data.request}",
        lambda data: "form[action$='/notes']",
        "[name=professor_notes]",
        lambda data: {"professor_notes": "Asked about stack traces. " * 400},
    ),
    FormCase(
        "booking-page-move-without-choosing-a-time",
        "student",
        lambda data: f"/bookings/{data.upcoming}",
        lambda data: "form[action$='/reschedule']",
        "fieldset",
        lambda data: {},
    ),
    FormCase(
        "e-mailed-decline-link-empty-reason",
        "anonymous",
        decline_link,
        lambda data: "form[action^='/actions/']",
        "[name=reason]",
        lambda data: {},
    ),
)


@dataclass
class Submitted:
    case: FormCase
    page: Any
    form: Any  # locators: found again after a swap replaced the form
    field: Any
    typed: dict[str, str]
    blocked: str | None  # the browser's own validation stopped the submission: its bubble's text


@pytest.fixture(scope="module", params=CASES, ids=[case.name for case in CASES])
async def submitted(request: pytest.FixtureRequest, contexts: dict[str, Any], data: Data) -> AsyncIterator[Submitted]:
    """The form filled in with something wrong and sent, once per form; its answer swapped in and settled."""
    case: FormCase = request.param
    page = await contexts[case.role].new_page()
    try:
        response = await page.goto(case.path(data))
        assert response is not None
        assert response.status == 200, f"{case.path(data)} answered {response.status}"
        await live(page)
        await case.prepare(page, data)
        form = page.locator(case.form(data))
        typed = case.typed(data)
        for name, value in typed.items():
            await form.locator(f"[name={name}]").fill(value)
        button = form.locator("[type=submit]")
        blocked = await form.evaluate(
            "f => f.noValidate || f.checkValidity() ? null"
            " : [...f.elements].find(e => !e.checkValidity()).validationMessage"
        )
        if blocked is None:
            if await form.get_attribute("hx-post"):
                async with page.expect_response(lambda r: r.request.method == "POST"):
                    await button.click()
                await settled(page)
            else:
                async with page.expect_navigation():
                    await button.click()
        yield Submitted(case, page, form, form.locator(case.field).first, typed, blocked)
    finally:
        await page.close()


async def message_of(submitted: Submitted) -> tuple[Any, bool] | None:
    """The message: the field's description when it says something (True), else any message in view (False)."""
    page = submitted.page
    deadline = clock.monotonic() + 5
    while True:
        if await submitted.field.count():
            for id_ in ((await submitted.field.get_attribute("aria-describedby")) or "").split():
                described = page.locator(f"[id='{id_}']").first
                if await described.count() and (await described.inner_text()).strip():
                    return described, True
        for candidate in await page.locator(MESSAGES).filter(has_text=re.compile(r"\w")).all():
            if await candidate.is_visible():
                return candidate, False
        if clock.monotonic() > deadline:
            return None
        await page.wait_for_timeout(100)


def not_shown(submitted: Submitted) -> str:
    if submitted.blocked is not None:
        return (
            "the browser's own validation stopped the form before it was sent (no novalidate), so no message is in "
            f"the page; its bubble said: {submitted.blocked!r}"
        )
    return f"no message in the page after the answer (looked at the field's aria-describedby and {MESSAGES})"


# -- the checks ----------------------------------------------------------------------------------------------------


async def test_a_bad_submission_shows_its_message_in_the_page(submitted: Submitted) -> None:
    found = await message_of(submitted)
    if found is None:
        pytest.fail(not_shown(submitted), pytrace=False)
    message, _ = found
    await expect(message).to_be_visible()
    assert (await message.inner_text()).strip()


async def test_a_bad_submission_keeps_what_was_typed(submitted: Submitted) -> None:
    kept = {name: value for name, value in submitted.typed.items() if name not in submitted.case.passwords}
    if not kept:
        pytest.skip("nothing is typed into this form but the wrong value itself")
    lost = {}
    for name, value in kept.items():
        control = submitted.form.locator(f"[name={name}]")
        now = await control.input_value() if await control.count() else "(the field is gone)"
        if now != value:
            lost[name] = f"typed {value[:60]!r}{'...' if len(value) > 60 else ''}, now {now[:60]!r}"
    assert not lost, f"what was typed is lost: {lost}"


async def test_the_message_names_the_field_in_words(submitted: Submitted) -> None:
    found = await message_of(submitted)
    if found is None:
        pytest.fail(not_shown(submitted), pytrace=False)
    message, beside_the_field = found
    text = " ".join((await message.inner_text()).split())
    label = " ".join((await submitted.field.evaluate(LABEL_OF)).split()) if await submitted.field.count() else ""
    names = {name for name in (await submitted.form.evaluate("f => [...f.elements].map(e => e.name)")) if name}
    code_names = sorted({*SNAKE_CASE.findall(text), *(f"{name}:" for name in names if f"{name}:" in text)})
    assert not code_names, f"the message {text!r} uses code names {code_names}"
    assert beside_the_field or (label and label.lower() in text.lower()), (
        f"the message {text!r} is neither the field's description (aria-describedby) nor names its label {label!r}"
    )
