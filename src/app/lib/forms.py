"""Web forms decoded into declared models: only declared fields are read, so an extra field never reaches a row.

A form model is a msgspec Struct: a field left out (or a number, date or list left empty) takes its default, or is
an error when it has none. Strings are stripped (a `Verbatim` one is kept as typed, e.g. a password); numbers,
dates and lists parse here, and a value that does not parse is a FieldErrors naming its field. What a valid value
is stays the services' rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from typing import Annotated, Any, TypeVar
from uuid import UUID

import msgspec
from litestar import Request
from litestar.datastructures import FormMultiDict

from app.lib.errors import FieldErrors

Form = TypeVar("Form", bound=msgspec.Struct)
# A string field kept exactly as typed (passwords: leading or trailing spaces are part of them).
Verbatim = Annotated[str, msgspec.Meta(extra={"verbatim": True})]
CHECKED = frozenset({"on", "true", "1", "yes"})
MESSAGES: Mapping[type[msgspec.inspect.Type], str] = {
    msgspec.inspect.IntType: "Enter a whole number.",
    msgspec.inspect.DateType: "Enter a valid date.",
}
REQUIRED = "Fill in this field."


async def read_form(request: Request[Any, Any, Any], model: type[Form]) -> Form:
    return decode_form(await request.form(), model)


def decode_form(form: FormMultiDict | Mapping[str, Any], model: type[Form]) -> Form:
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    info = msgspec.inspect.type_info(model)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        name = field.encode_name
        kind = field.type
        if isinstance(kind, msgspec.inspect.ListType):
            raw = form.getall(name, []) if isinstance(form, FormMultiDict) else list(form.get(name, []))
            try:
                values[field.name] = [_parse(kind.item_type, str(item)) for item in raw]
            except ValueError:
                errors[name] = MESSAGES.get(type(kind.item_type), "Choose from the list.")
            continue
        raw_value = str(form.get(name, ""))
        if name not in form or (not raw_value.strip() and _is_typed(kind)):
            if field.required:  # left out, with no default
                errors[name] = MESSAGES.get(type(_inner(kind)), REQUIRED)
            continue  # left out (or a typed field left empty): the default stands
        try:
            values[field.name] = _parse(kind, raw_value)
        except ValueError:
            errors[name] = MESSAGES.get(type(_inner(kind)), "Enter a valid value.")
    if errors:
        raise FieldErrors(errors)
    return model(**values)


def _is_typed(kind: msgspec.inspect.Type) -> bool:
    """Not a plain string: an empty value means "not given", not "the empty string"."""
    if isinstance(kind, msgspec.inspect.Metadata):
        return _is_typed(kind.type)
    return not isinstance(kind, msgspec.inspect.StrType)


def _inner(kind: msgspec.inspect.Type) -> msgspec.inspect.Type:
    """`int | None` reads as `int` (an empty field is None)."""
    if isinstance(kind, msgspec.inspect.UnionType):
        return next(t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType))
    return kind


def _parse(kind: msgspec.inspect.Type, raw: str) -> Any:
    if isinstance(kind, msgspec.inspect.Metadata):
        if (kind.extra or {}).get("verbatim"):
            return raw
        return _parse(kind.type, raw)
    if isinstance(kind, msgspec.inspect.UnionType):
        if not raw.strip() and any(isinstance(t, msgspec.inspect.NoneType) for t in kind.types):
            return None
        return _parse(_inner(kind), raw)
    parser = PARSERS.get(type(kind))
    if parser is None:
        raise TypeError(f"form fields of type {kind} are not supported")
    return parser(raw)


PARSERS: Mapping[type[msgspec.inspect.Type], Callable[[str], Any]] = {
    msgspec.inspect.StrType: str.strip,
    msgspec.inspect.IntType: lambda raw: int(raw.strip()),
    msgspec.inspect.BoolType: lambda raw: raw.strip().lower() in CHECKED,
    msgspec.inspect.DateType: lambda raw: date.fromisoformat(raw.strip()),
    msgspec.inspect.UUIDType: lambda raw: UUID(raw.strip()),
}
