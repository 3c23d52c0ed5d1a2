"""Web forms decoded into declared models."""

from __future__ import annotations

from datetime import date

import msgspec
import pytest
from litestar.datastructures import FormMultiDict

from app.lib.errors import FieldErrors
from app.lib.forms import Verbatim, decode_form


class Example(msgspec.Struct):
    name: str = ""
    password: Verbatim = ""
    count: int = 1
    limit: int | None = None
    agree: bool = False
    day: date | None = None
    days: list[int] = msgspec.field(default_factory=list)


class Required(msgspec.Struct):
    start: date
    minutes: int


def form(*pairs: tuple[str, str]) -> FormMultiDict:
    return FormMultiDict(list(pairs))


def test_fields_the_model_does_not_declare_are_never_read() -> None:
    decoded = decode_form(form(("name", "Ada"), ("is_admin", "on"), ("google_sub", "x")), Example)
    assert msgspec.structs.asdict(decoded) == {
        "name": "Ada",
        "password": "",
        "count": 1,
        "limit": None,
        "agree": False,
        "day": None,
        "days": [],
    }


def test_text_is_stripped_but_a_password_is_kept_as_typed() -> None:
    decoded = decode_form(form(("name", "  Ada "), ("password", " secret ")), Example)
    assert (decoded.name, decoded.password) == ("Ada", " secret ")


def test_numbers_dates_checkboxes_and_lists_are_parsed() -> None:
    decoded = decode_form(
        form(("count", "3"), ("limit", "7"), ("agree", "on"), ("day", "2026-12-01"), ("days", "0"), ("days", "4")),
        Example,
    )
    assert (decoded.count, decoded.limit, decoded.agree, decoded.day, decoded.days) == (
        3,
        7,
        True,
        date(2026, 12, 1),
        [0, 4],
    )


def test_an_empty_number_takes_its_default() -> None:
    assert (decode_form(form(("count", ""), ("limit", " ")), Example).count, None) == (1, None)


def test_values_that_do_not_parse_are_errors_naming_each_field() -> None:
    with pytest.raises(FieldErrors) as refused:
        decode_form(form(("count", "three"), ("day", "1st of May"), ("days", "Monday")), Example)
    assert refused.value.errors == {
        "count": "Enter a whole number.",
        "day": "Enter a valid date.",
        "days": "Enter a whole number.",
    }


def test_a_field_without_a_default_must_be_given() -> None:
    with pytest.raises(FieldErrors) as refused:
        decode_form(form(("minutes", "")), Required)
    assert refused.value.errors == {"start": "Enter a valid date.", "minutes": "Enter a whole number."}
