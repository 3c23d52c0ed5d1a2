"""Text bound for a spreadsheet (CSV exports)."""

from __future__ import annotations

# A cell whose text starts with one of these (after any leading spaces) is run as a formula by spreadsheets;
# a tab or a carriage return in front does not stop them either.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def safe_cell(value: object) -> str:
    """Any value as spreadsheet text: one that a spreadsheet would run as a formula gets a leading quote."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.lstrip(" ").startswith(FORMULA_STARTS) or text[:1] in FORMULA_STARTS else text
