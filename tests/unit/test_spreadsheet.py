"""Cells written to CSV exports: text that a spreadsheet would run as a formula stays text."""

from __future__ import annotations

import pytest

from app.lib.spreadsheet import safe_cell


@pytest.mark.parametrize("value", ["=SUM(A1:A9)", "+1", "-2+3", "@cmd"])
def test_a_cell_that_would_start_a_formula_is_quoted(value: str) -> None:
    assert safe_cell(value) == f"'{value}"


@pytest.mark.parametrize("value", ["Room 1.01", "", "Office hours = help"])
def test_ordinary_text_is_left_as_it_is(value: str) -> None:
    assert safe_cell(value) == value


@pytest.mark.parametrize("value", ["\t=1+1", "\r=1+1", '  =HYPERLINK("http://x")', "\n@SUM(1)"])
def test_a_formula_behind_whitespace_or_a_control_character_is_quoted(value: str) -> None:
    assert safe_cell(value) == f"'{value}"


def test_values_that_are_not_text_become_text() -> None:
    assert (safe_cell(None), safe_cell(3), safe_cell(-3)) == ("", "3", "'-3")
