"""RFC 9457 ``application/problem+json`` errors with stable ``type`` URIs."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from asyncpg.exceptions._base import DataError as ClientDataError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.http.routing import allowed_methods
from shared.http.unstorable import unstorable_field

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
# What FastAPI says when it cannot decode a JSON body to parse it (not UTF-8).
_BODY_PARSE_FAILED = "There was an error parsing the body"
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
    # ("body", "participant", "email") -> "participant.email"; drop the location prefix, but
    # not before a list index: ("body", 0) is "body.0", never a bare number.
    parts = [str(p) for p in loc]
    if len(loc) > 1 and parts[0] in {"query", "path", "header"}:
        return parts[1]  # a parameter, even one given several times (``status=a&status=b``)
    if len(loc) > 1 and parts[0] == "body":
        if not isinstance(loc[1], int):
            parts = parts[1:]
    return ".".join(parts) or "body"


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _not_json_body(request: Request, errors: list[dict[str, Any]]) -> bool:
    """A body sent as something else than JSON: FastAPI hands the route its raw bytes."""
    return not _is_json(request.headers.get("content-type")) and any(
        tuple(e.get("loc", ())) == ("body",) and isinstance(e.get("input"), bytes) for e in errors
    )


def _unsupported_media_type(request: Request) -> JSONResponse:
    sent = request.headers.get("content-type") or "none"
    return problem_response(
        415,
        "unsupported-media-type",
        f"The body must be JSON (Content-Type: application/json); this one was sent as {sent}",
        instance=request.url.path,
        field="Content-Type",
    )


def _malformed_json(request: Request, where: str) -> JSONResponse:
    return problem_response(
        400,
        "malformed-json",
        f"The request body is not valid JSON: {where}",
        instance=request.url.path,
        field="body",
    )


def _position(doc: str | bytes, pos: int) -> str:
    newline: Any = b"\n" if isinstance(doc, bytes) else "\n"
    line = doc.count(newline, 0, pos) + 1
    column = pos - (doc.rfind(newline, 0, pos) + 1) + 1
    return f"at line {line}, column {column} (position {pos})"


def _int_bits(exc: Exception) -> int:
    # asyncpg names the integer column it could not encode for: "value out of int32 range".
    text = str(exc)
    return 16 if "int16 range" in text else 32 if "int32 range" in text else 64


async def _unstorable(request: Request, exc: Exception) -> tuple[str, str] | None:
    """The field of the request that holds what the database refused, if it can be told."""
    if _is_json(request.headers.get("content-type")):
        try:
            # The route's request object: its body was read and parsed already (cached).
            found = unstorable_field(await request.json(), _int_bits(exc))
        except ValueError:
            found = None
        if found is not None:
            return found
    for name, value in request.query_params.multi_items():
        if "\x00" in value:
            return name, "contains a NUL character, which cannot be stored"
    return None


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
        raw = list(exc.errors())
        for e in raw:
            if e.get("type") == "json_invalid":
                # Not JSON at all: a malformed request (400), not content that fails a rule.
                loc = tuple(e.get("loc", ()))
                pos = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else 0
                error = (e.get("ctx") or {}).get("error", "JSON decode error")
                doc = exc.body if isinstance(exc.body, (str, bytes)) else ""
                return _malformed_json(request, f"{error} {_position(doc, pos)}")
        if _not_json_body(request, raw):
            return _unsupported_media_type(request)
        errors = [
            {"field": _field_path(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")}
            for e in raw
        ]
        first = errors[0] if errors else {"field": "body", "message": "invalid request"}
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
        if exc.status_code == 400 and exc.detail == _BODY_PARSE_FAILED:
            # The body is not UTF-8 text (FastAPI could not decode it to parse it).
            body = await request.body()
            try:
                body.decode()
                where = "it cannot be read"
            except UnicodeDecodeError as bad:
                where = f"not UTF-8 text {_position(body, bad.start)}"
            return _malformed_json(request, where)
        slug = TITLES.get(exc.status_code, "error").lower().replace(" ", "-")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            # Every method of the path, not only those of the first route that matched it.
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return problem_response(
            exc.status_code, slug, str(exc.detail), instance=request.url.path, headers=headers
        )

    async def _bad_data(request: Request, exc: Exception) -> JSONResponse:
        # Input that passed validation but that Postgres cannot store (a NUL character in
        # text, a number out of range) is the caller's error, not ours. The database's message
        # may quote the value, so it is not repeated: the field is found in the request.
        found = await _unstorable(request, exc)
        if found is not None:
            field, why = found
            return problem_response(
                422,
                "unstorable-value",
                f"{field}: the value {why}",
                instance=request.url.path,
                field=field,
                errors=[{"field": field, "message": f"the value {why}"}],
            )
        return problem_response(
            422,
            "unstorable-value",
            f"A value in the request cannot be stored ({type(exc).__name__})",
            instance=request.url.path,
        )

    # Refused by the server (SQLSTATE class 22), or by asyncpg before sending: an integer
    # beyond its column's range (asyncpg does not export that class by a public name).
    app.add_exception_handler(asyncpg.DataError, _bad_data)
    app.add_exception_handler(ClientDataError, _bad_data)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(
            500,
            "internal-error",
            "The server failed to handle this request.",
            instance=request.url.path,
        )
