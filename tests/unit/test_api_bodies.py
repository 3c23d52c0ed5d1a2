"""Every JSON body an API operation reads refuses fields it does not declare, so none can be slipped into a row."""

from __future__ import annotations

import typing

import msgspec
from litestar.handlers import HTTPRouteHandler

from app.asgi import create_app


def body_structs() -> dict[str, type[msgspec.Struct]]:
    found = {}
    for route in create_app().routes:
        for handler in getattr(route, "route_handlers", []):
            if not isinstance(handler, HTTPRouteHandler) or "data" not in handler.parsed_fn_signature.parameters:
                continue
            annotation = handler.parsed_fn_signature.parameters["data"].annotation
            for candidate in (annotation, *typing.get_args(annotation)):
                for inner in (candidate, *typing.get_args(candidate)):
                    if isinstance(inner, type) and issubclass(inner, msgspec.Struct):
                        found[f"{route.path} {handler.handler_name}"] = inner
    return found


def test_the_api_reads_its_bodies_into_structs() -> None:
    assert len(body_structs()) >= 10


def test_every_api_body_forbids_unknown_fields() -> None:
    open_bodies = {
        where: struct.__name__
        for where, struct in body_structs().items()
        if not struct.__struct_config__.forbid_unknown_fields
    }
    assert open_bodies == {}
