"""RFC 9457 ``application/problem+json`` errors with stable ``type`` URIs."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.http.routing import allowed_methods

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://referral-platform.dev/problems/"

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class Problem(Exception):
    """Raise from a route to answer with a problem document."""

    def __init__(
        self,
        status: int,
        type_: str,
        detail: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.type = type_
        self.detail = detail
        self.field = field
        self.headers = headers
        self.extra = extra


def not_found(kind: str, ident: object, field: str) -> Problem:
    """``kind-not-found``, naming the path parameter that named it."""
    return Problem(404, f"{kind}-not-found", f"No {kind} {ident}", field=field)


def problem_response(
    status: int,
    type_: str,
    detail: str,
    *,
    instance: str | None = None,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + type_,
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if field:
        body["field"] = field
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _field_path(loc: tuple[Any, ...]) -> str:
    # ("body", "participant", "email") -> "participant.email"; drop the location prefix.
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    return ".".join(parts) or str(loc[0] if loc else "")


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status,
            exc.type,
            exc.detail,
            instance=request.url.path,
            field=exc.field,
            headers=exc.headers,
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            # Not JSON at all: a malformed request (400), not content that fails a rule.
            return problem_response(
                400,
                "malformed-json",
                "The request body is not valid JSON",
                instance=request.url.path,
                field="body",
            )
        errors = [
            {"field": _field_path(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        return problem_response(
            422,
            "validation-error",
            f"{first['field']}: {first['message']}",
            instance=request.url.path,
            field=first["field"],
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug = TITLES.get(exc.status_code, "error").lower().replace(" ", "-")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            # Every method of the path, not only those of the first route that matched it.
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return problem_response(
            exc.status_code, slug, str(exc.detail), instance=request.url.path, headers=headers
        )

    @app.exception_handler(asyncpg.DataError)
    async def _bad_data(request: Request, exc: asyncpg.DataError) -> JSONResponse:
        # Input that passed validation but that Postgres cannot store (a NUL character in
        # text, a number out of range) is the caller's error, not ours. The database's message
        # may quote the value, so only its class is named.
        return problem_response(
            422,
            "unstorable-value",
            f"A value in the request cannot be stored ({type(exc).__name__})",
            instance=request.url.path,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500,
            "internal-error",
            "The server failed to handle this request.",
            instance=request.url.path,
        )
