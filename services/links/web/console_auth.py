"""The ops console's session: the admin key typed once into a form, then a signed cookie.

The cookie holds an expiry and a random nonce, signed with HMAC-SHA256 under a key derived
from the admin key, so the server keeps no session state, a cookie cannot be forged or
extended without the admin key, and changing the admin key logs every console out. It is
HttpOnly (no script reads it), SameSite=Strict (no other site can make the browser send it,
which also covers CSRF on the console's forms) and Secure when served over HTTPS."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import Response

COOKIE = "console_session"
COOKIE_PATH = "/console"
LIFETIME_S = 8 * 3600
MAX_FORM_BYTES = 4096


def _signing_key(admin_key: str) -> bytes:
    # A derived key, so the cookie never carries anything computed with the raw admin key.
    return hmac.new(admin_key.encode(), b"console-session-v1", hashlib.sha256).digest()


def _sign(admin_key: str, payload: str) -> str:
    return hmac.new(_signing_key(admin_key), payload.encode(), hashlib.sha256).hexdigest()


def issue(admin_key: str, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + LIFETIME_S)
    payload = f"{expires}.{secrets.token_urlsafe(16)}"
    return f"{payload}.{_sign(admin_key, payload)}"


def valid(cookie: str | None, admin_key: str | None, now: float | None = None) -> bool:
    if not cookie or not admin_key:
        return False
    payload, _, signature = cookie.rpartition(".")
    expires, _, nonce = payload.partition(".")
    if not expires.isdigit() or not nonce:
        return False
    if not hmac.compare_digest(signature.encode(), _sign(admin_key, payload).encode()):
        return False
    return int(expires) > (time.time() if now is None else now)


def key_matches(candidate: str, admin_key: str | None) -> bool:
    return bool(admin_key) and hmac.compare_digest(
        candidate.strip().encode(), (admin_key or "").encode()
    )


def admin_key_of(request: Request) -> str | None:
    key = request.app.state.runtime.settings.admin_api_key
    return key.get_secret_value() if key else None


def authenticated(request: Request) -> bool:
    return valid(request.cookies.get(COOKIE), admin_key_of(request))


def _secure(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "")
    return request.url.scheme == "https" or forwarded.split(",")[0].strip() == "https"


def set_session(response: Response, request: Request, admin_key: str) -> None:
    response.set_cookie(
        COOKIE,
        issue(admin_key),
        max_age=LIFETIME_S,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")


async def read_form(request: Request) -> dict[str, str] | None:
    """A small urlencoded form (first value of each field), or None if it is not one.
    Parsed here so the service needs no multipart library for one login form."""
    if request.headers.get("content-type", "").split(";")[0].strip() != (
        "application/x-www-form-urlencoded"
    ):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def safe_next(target: str | None) -> str:
    """Where to go after logging in: only a console path of ours (no open redirect)."""
    if target and target.startswith("/console") and "//" not in target and "\\" not in target:
        return target
    return "/console"
