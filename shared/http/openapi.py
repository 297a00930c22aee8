"""What every service's OpenAPI document says beyond its routes' models: each error status a
route can answer, as RFC 9457 ``application/problem+json`` with the ``Problem`` schema; the
bearer key on the routes that need one. A route names the statuses of its own rules
(``responses=problem_responses(404, 409)``); what every route can answer by the shared
conventions (a bad key, an invalid or unparseable request) is added here, so no route can
forget it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Annotated, Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from shared.http.auth import (
    require_admin,
    require_any_key,
    require_program_access,
    require_program_key,
)
from shared.http.problems import PROBLEM_JSON, TITLES

PROBLEM_SCHEMA = "Problem"
BEARER_SCHEME = "bearerKey"
# Dependencies that read the ``Authorization: Bearer`` key (401 without one, 403 for a key
# that may not do this).
AUTH_DEPENDENCIES: set[Callable[..., Any]] = {
    require_admin,
    require_any_key,
    require_program_access,
    require_program_key,
}


class FieldError(BaseModel):
    field: str
    message: str


class ProblemDocument(BaseModel):
    """An RFC 9457 problem document as the services write it (``shared.http.problems``)."""

    model_config = ConfigDict(extra="allow", title=PROBLEM_SCHEMA)

    type: str = Field(description="A stable URI naming the kind of problem")
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    instance: str | None = Field(default=None, description="The request path")
    field: str | None = Field(default=None, description="The offending field, if one is")
    errors: list[FieldError] | None = Field(
        default=None, description="Every invalid field (validation errors)"
    )


def _whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# An integer as JSON Schema reads one: 2 and 2.0, never "2" or true. Request bodies use it
# so the server accepts exactly what their documented ``"type": "integer"`` admits.
JsonInt = Annotated[int, BeforeValidator(_whole), Field(strict=True)]


# Text Postgres can store: no NUL character (asyncpg would refuse it with a DataError).
STORABLE_TEXT = r"^[^\x00]*$"


def one_of(names: Iterable[str]) -> str:
    """A pattern that admits exactly ``names``: an enumeration a path or query parameter, or
    an item of a list, can state without a separate schema."""
    return "^(" + "|".join(re.escape(n) for n in sorted(names)) + ")$"


def some_of(names: Iterable[str]) -> str:
    """A pattern that admits one or more of ``names``, comma-separated (``a`` or ``a,b``): a
    query parameter that may also be repeated states its whole rule this way."""
    name = "(" + "|".join(re.escape(n) for n in sorted(names)) + ")"
    return f"^{name}(,{name})*$"


def problem_response(status: int) -> dict[str, Any]:
    return {
        "description": TITLES.get(status, "Error"),
        "content": {PROBLEM_JSON: {"schema": {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA}"}}},
    }


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """For a route's ``responses=``: the statuses its own rules answer, as problem+json."""
    return {status: problem_response(status) for status in statuses}


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for dependency in dependant.dependencies:
        yield from _dependants(dependency)


def _authenticated(route: RouteContext) -> bool:
    return any(d.call in AUTH_DEPENDENCIES for d in _dependants(route.dependant))


def _checks_program_keys(route: RouteContext) -> bool:
    keyed = {require_any_key, require_program_access, require_program_key}
    return any(d.call in keyed for d in _dependants(route.dependant))


def _takes_input(route: RouteContext) -> bool:
    return route.body_field is not None or any(
        d.path_params or d.query_params or d.header_params or d.cookie_params
        for d in _dependants(route.dependant)
    )


def default_statuses(route: RouteContext, asks_links_about_keys: bool = False) -> list[int]:
    """What a route answers by the shared conventions, whatever its own rules."""
    statuses = []
    if route.body_field is not None:
        statuses.append(400)  # a body that does not parse as JSON (the position in detail)
        statuses.append(415)  # a body sent as something else than application/json
    if _authenticated(route):
        statuses += [401, 403]
    if _takes_input(route):
        statuses.append(422)  # a parameter or body that fails its schema
    if asks_links_about_keys and _checks_program_keys(route):
        statuses.append(503)  # a key not known here yet, and links cannot confirm it
    return statuses


def _document(app: FastAPI, asks_links_about_keys: bool) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=app.description,
        routes=app.routes,
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    problem = ProblemDocument.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas[PROBLEM_SCHEMA] = problem
    # FastAPI's own validation error shape is never sent: 422 is a problem document.
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    secured = False
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        authenticated = _authenticated(route)
        secured |= authenticated
        for method in route.methods:
            operation = doc["paths"][route.path_format][method.lower()]
            responses = operation.setdefault("responses", {})
            for status in default_statuses(route, asks_links_about_keys):
                responses[str(status)] = problem_response(status)
            if authenticated:
                operation["security"] = [{BEARER_SCHEME: []}]
    if secured:
        doc["components"]["securitySchemes"] = {
            BEARER_SCHEME: {"type": "http", "scheme": "bearer", "description": "An API key"}
        }
    return doc


def install_openapi(app: FastAPI, asks_links_about_keys: bool = False) -> None:
    """Serve the document above as the app's ``/openapi.json`` (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(app, asks_links_about_keys)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
