"""Text bound for a spreadsheet (CSV exports)."""

from __future__ import annotations


def safe_cell(value: str) -> str:
    """Spreadsheets run cells starting with = + - @ as formulas; a leading quote keeps them text."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@") else value
