"""Every 4xx and 5xx answer as a typed exception. The services answer errors as RFC 9457
``application/problem+json`` documents; an answer that is not one (a proxy's HTML page) still
becomes a ``ProblemError`` with its status, so callers catch one family of exceptions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

# The services' problem types are URIs under this base; ``kind`` is the part after it.
TYPE_BASE = "https://referral-platform.dev/problems/"


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str


class ProblemError(Exception):
    """An error answer: ``status``, ``type`` (a stable URI), ``title``, ``detail``, the
    offending ``field`` if one is, every invalid field in ``errors`` (422), and the whole
    document in ``body`` (some problems carry more members)."""

    def __init__(
        self,
        status: int,
        type: str,
        title: str,
        detail: str,
        *,
        field: str | None = None,
        errors: tuple[FieldProblem, ...] = (),
        instance: str | None = None,
        body: dict[str, Any] | None = None,
        headers: httpx.Headers | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}" + (f" (field {field})" if field else ""))
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.field = field
        self.errors = errors
        self.instance = instance
        self.body = body or {}
        self.headers = headers or httpx.Headers()

    @property
    def kind(self) -> str:
        """The problem type without its base: ``program-not-found``, ``validation-error``."""
        return self.type.removeprefix(TYPE_BASE)


class AuthError(ProblemError):
    """401 (no or unknown key) or 403 (a key that may not do this)."""


class NotFoundError(ProblemError):
    """404: what the path names does not exist (``field`` names the path parameter)."""


class ConflictError(ProblemError):
    """409: the request contradicts the current state, or an ``Idempotency-Key`` was reused
    with another body."""


class ValidationError(ProblemError):
    """422: a value breaks a rule; ``errors`` lists every offending field."""


class RateLimitError(ProblemError):
    """429: too many requests; ``retry_after`` is the wait the service asked for, if any."""

    @property
    def retry_after(self) -> float | None:
        value = self.headers.get("Retry-After")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


_BY_STATUS: dict[int, type[ProblemError]] = {
    401: AuthError,
    403: AuthError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitError,
}


def problem_from(status: int, content: bytes, headers: httpx.Headers) -> ProblemError:
    """The exception for an error answer's status and body."""
    try:
        body = json.loads(content) if content else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    text = content.decode("utf-8", "replace")[:500]
    errors = tuple(
        FieldProblem(str(e.get("field", "")), str(e.get("message", "")))
        for e in body.get("errors") or ()
        if isinstance(e, dict)
    )
    return _BY_STATUS.get(status, ProblemError)(
        status,
        str(body.get("type", "about:blank")),
        str(body.get("title", f"HTTP {status}")),
        str(body.get("detail", text)),
        field=body.get("field"),
        errors=errors,
        instance=body.get("instance"),
        body=body,
        headers=headers,
    )
