"""Text typed by people: control characters have no place in it (a NUL cannot even be stored, a line break in a
name would break the e-mail headers it is written into)."""

from __future__ import annotations

import re

from app.lib.i18n import gettext as _

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def control_character_problem(value: object, *, multiline: bool = False) -> str | None:
    """A message when `value` holds a control character (line breaks and tabs are fine in multi-line text)."""
    pattern = _CONTROL_BUT_LINES if multiline else _CONTROL
    if isinstance(value, str) and pattern.search(value):
        return _("Remove the control characters from this text.") if multiline else _("Use one line of plain text.")
    return None


def one_line(value: str) -> str:
    """The text on one line, every control character replaced by a space (for headers and names from elsewhere)."""
    return " ".join(_CONTROL.sub(" ", value).split())
