"""How each state of a booking or a waitlist place is told to people: a word, an icon and a sentence.

One vocabulary for the grid, the lists, the dashboard and the e-mails; colour is never the only signal.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class State:
    name: str
    icon: str
    label: str  # a word or two, for a badge
    sentence: str  # the state told to the student in full


STATES = {
    state.name: state
    for state in (
        State("pending", "◔", "Requested", "Requested: waiting for the professor's answer"),
        State("confirmed", "✔", "Confirmed", "Booked and confirmed"),
        State("declined", "✖", "Declined", "Declined by the professor"),
        State("cancelled", "⊘", "Cancelled", "Cancelled"),
        State("completed", "✓", "Completed", "Held"),
        State("no_show", "⚑", "No-show", "Missed"),
        State("waiting", "☰", "Waitlisted", "On the waitlist"),
        State("offered", "★", "Place held", "A place is held for you"),
    )
}


def state_of(name: str) -> State:
    return STATES[name]
