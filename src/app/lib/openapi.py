"""OpenAPI honesty: the error answers every API operation can give are documented with their body."""

from __future__ import annotations

from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import Components, OpenAPI, OpenAPIMediaType, OpenAPIResponse, Reference, Schema
from litestar.openapi.spec.enums import OpenAPIType

ERROR_STATUSES = {
    "400": "Malformed request (the body or a parameter does not parse)",
    "401": "No valid bearer token",
    "403": "Not allowed for this role",
    "404": "Not found, or someone else's",
    "409": "The current state forbids it (full, taken, too late, wrong transition)",
    "422": "A field is invalid; `extra` names it",
    "429": "Too many failed sign-ins; see Retry-After",
}
ERROR_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["status_code", "detail", "code"],
    properties={
        "status_code": Schema(type=OpenAPIType.INTEGER),
        "detail": Schema(type=OpenAPIType.STRING, description="For people, in English"),
        "code": Schema(
            type=OpenAPIType.STRING,
            description="For programs: stays the same whatever the wording, e.g. not_found, conflict, slot_full",
        ),
        "extra": Schema(
            one_of=[
                Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.OBJECT)),
                Schema(type=OpenAPIType.OBJECT),
                Schema(type=OpenAPIType.NULL),
            ]
        ),
    },
)
PUBLIC_OPERATIONS = {("/api/v1/auth/register", "post"), ("/api/v1/auth/token", "post")}


def operation_id(route_handler: HTTPRouteHandler, http_method: object, path_components: object) -> str:
    """`slotsBook`, `bookingsCancel`: the tag and the handler, so generated clients get short, stable names."""
    tag = (route_handler.resolve_tags() or ["app"])[0]
    first, *rest = f"{tag}_{route_handler.handler_name}".split("_")
    return first + "".join(word.title() for word in rest)


def error_response(description: str) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=description,
        content={"application/json": OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Error"))},
    )


def document_errors(schema: OpenAPI) -> None:
    components = schema.components if isinstance(schema.components, Components) else Components()
    components.schemas = {**(components.schemas or {}), "Error": ERROR_SCHEMA}
    schema.components = components
    for path, item in (schema.paths or {}).items():
        for method in ("get", "post", "put", "patch", "delete"):
            operation = getattr(item, method, None)
            if operation is None:
                continue
            responses = operation.responses if operation.responses is not None else {}
            if "400" in responses:
                # Litestar's own 400 types `extra` as ["null", "object", "array"] with no `items`, which
                # generated clients cannot read (openapi-python-client drops the response): use ours.
                responses["400"] = error_response(ERROR_STATUSES["400"])
            if path.startswith("/api/"):
                if (path, method) in PUBLIC_OPERATIONS:
                    operation.security = []
                for status, description in ERROR_STATUSES.items():
                    responses.setdefault(status, error_response(description))
            operation.responses = responses
