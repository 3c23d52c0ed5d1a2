"""What "no English left" means for a German reader: the words only the interface would write in English, looked for
in what a person reads (text and the attributes read aloud or shown), after the people's own data is taken out."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable
from html.parser import HTMLParser

# Whole words (case as written) that no German page, fragment or e-mail of this app contains unless something was
# left untranslated. Words German shares with English (Status, Details, Link, Name, Start, Export, Feedback, E-Mail,
# Team, Online, ...) are not here.
_WORDS = (
    "the The your Your you You with With and And for For from From this This that That these those is are were "
    "has have had not Not no No yes Yes any all All here Here there please Please will can cannot can't don't "
    "won't it's isn't there's what What when When where Where which who Who how How why "
    "Book Booked booked Booking booking Bookings bookings Cancel Cancelled cancelled Save Saved Settings Sign "
    "Dashboard Professor Professors professor professors Waitlist waitlist Free free Full full Week week "
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday Mon Tue Wed Thu Fri Sat Sun "
    "January February March April June July October December Mar May Oct Dec AM PM "
    "slot slots Slot Slots request requests Request Requests student students Students "
    "Confirm Confirmed confirmed Decline Declined declined Pending pending Completed completed Today today "
    "Tomorrow tomorrow Yesterday Edit Delete Close Search Password password Username username Email email "
    "Topic Reason Location Capacity Title Notes minutes hours days Next Previous Back Loading Language "
    "Open Send Submit Add New Remove Leave Join Accept Upcoming Past Rating Update Create Generate Preview "
    "Course Courses course courses Account account Reminder Remind Unlock Verify Verified Moved Move "
    "Calendar calendar Sync Enabled Disabled Connect Disconnect Copy Show Hide Choose Select None "
    "Yours yours Waiting waiting Offered Expired expired Accepted Passed Held held place Place "
    "Office office Hours Member Members Message Messages Sent sent Failed failed Retry Resend Approve "
    "Platform Platforms Registered Revoke Created created Last Never never ago"
)
ENGLISH_WORDS = _WORDS.split()
ENGLISH = re.compile(r"(?<![\w-])(?:" + "|".join(map(re.escape, ENGLISH_WORDS)) + r")(?![\w-])")
ENGLISH_PHRASES = ("Sign in", "Sign out", "Time zone", "Office hours", "No-show", "No show")
READ_ATTRIBUTES = ("aria-label", "title", "placeholder", "alt", "hx-confirm", "data-label", "label")
# Shown in every language by design: each language's own name in the switch.
ALWAYS_SHOWN = ("English", "Deutsch")
URL = re.compile(r"https?://\S+")
TIME_ZONES = sorted(zoneinfo.available_timezones(), key=len, reverse=True)


class ReadableText(HTMLParser):
    """The text of a page as a person meets it: what is shown and what assistive technology reads."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        # Scripts and styles are not read; the time zones' names are the places' own (Babel's, per locale).
        if tag in ("script", "style") or (tag == "select" and values.get("name") in ("timezone", "tz")):
            self._skipping += 1
        for name in READ_ATTRIBUTES:
            if values.get(name):
                self.parts.append(str(values[name]))
        if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
            self.parts.append(str(values["value"]))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "select") and self._skipping:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self._skipping and data.strip():
            self.parts.append(data.strip())


def readable(html: str) -> list[str]:
    parser = ReadableText()
    parser.feed(html)
    parser.close()
    return parser.parts


def without(text: str, known: Iterable[str]) -> str:
    for value in sorted({k for k in known if k}, key=len, reverse=True):
        text = text.replace(value, " ")
    return text


def english_in_text(text: str, known: Iterable[str] = ()) -> list[str]:
    """Each English word or phrase found in `text`, with a little context, after the known data is removed."""
    known = [*known, *ALWAYS_SHOWN]
    cleaned = URL.sub(" ", without(text, known))
    found = []
    for phrase in ENGLISH_PHRASES:
        if phrase in cleaned:
            found.append(phrase)
    for match in ENGLISH.finditer(cleaned):
        start, end = max(match.start() - 40, 0), match.end() + 40
        found.append(f"{match.group(0)!r} in …{cleaned[start:end]}…")
    return found


def english_in_html(html: str, known: Iterable[str] = ()) -> list[str]:
    known = list(known)
    found = []
    for part in readable(html):
        part = without(part, TIME_ZONES) if "/" in part or "_" in part else part
        found.extend(english_in_text(part, known))
    return found
