"""How each state of a booking or a waitlist place is told to people: a word, an icon and a sentence.

One vocabulary for the grid, the lists, the dashboard and the e-mails; colour is never the only signal.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.lib.i18n import N_, gettext


@dataclass(frozen=True)
class State:
    name: str
    icon: str
    label_text: str  # a word or two, for a badge (English: translated when read)
    sentence_text: str  # the state told to the student in full

    @property
    def label(self) -> str:
        return gettext(self.label_text)

    @property
    def sentence(self) -> str:
        return gettext(self.sentence_text)


STATES = {
    state.name: state
    for state in (
        State("pending", "◔", N_("Requested"), N_("Requested: waiting for the professor's answer")),
        State("confirmed", "✔", N_("Confirmed"), N_("Booked and confirmed")),
        State("declined", "✖", N_("Declined"), N_("Declined by the professor")),
        State("cancelled", "⊘", N_("Cancelled"), N_("Cancelled")),
        State("completed", "✓", N_("Completed"), N_("Held")),
        State("no_show", "⚑", N_("No-show"), N_("Missed")),
        State("waiting", "☰", N_("Waitlisted"), N_("On the waitlist")),
        State("offered", "★", N_("Place held"), N_("A place is held for you")),
    )
}


def state_of(name: str) -> State:
    return STATES[name]


# A booking's status as one word inside a sentence ("this one is cancelled"); English keeps the status's own name.
STATUS_WORDS = {
    "pending": N_("pending"),
    "confirmed": N_("confirmed"),
    "declined": N_("declined"),
    "cancelled": N_("cancelled"),
    "completed": N_("completed"),
    "no_show": N_("no_show"),
}


def status_word(status: str) -> str:
    return gettext(STATUS_WORDS[status]) if status in STATUS_WORDS else status
