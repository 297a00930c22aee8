"""How the pages are answered: Jinja2 templates (autoescaped) and the security headers every
page carries (a CSP per page, no framing unless asked, no referrer, no caching)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"
ENV = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
# Scoreboard tokens are 32 random bytes, url-safe base64 (43 characters).
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_ORIGIN = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


def render(template: str, **context: Any) -> str:
    return ENV.get_template(template).render(**context)


def csp(nonce: str | None, frame_ancestors: str, img_origins: tuple[str, ...] = ()) -> str:
    images = " ".join(("'self'", "data:", *img_origins))
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    # Inline styles: the pages' own <style> and the charts' style attributes (no user CSS).
    return (
        f"default-src 'none'; img-src {images}; style-src 'unsafe-inline'; "
        f"script-src {script}; form-action 'self'; base-uri 'none'; "
        f"frame-ancestors {frame_ancestors}"
    )


def html_response(
    body: str,
    *,
    status: int = 200,
    csp: str,
    frameable: bool = False,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    response = HTMLResponse(body, status_code=status, headers=headers)
    response.headers["Content-Security-Policy"] = csp
    if not frameable:
        response.headers["X-Frame-Options"] = "DENY"
    # The token in the URL is the secret: never leak it to the sites the share buttons open.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


def frame_ancestors(origins: list[str]) -> str:
    """CSP frame-ancestors for the embed: the program's allow-list, 'none' if empty. Only
    well-formed https origins pass, so nothing can inject into the header."""
    allowed = [o.rstrip("/") for o in origins if _ORIGIN.match(o.rstrip("/"))]
    return " ".join(dict.fromkeys(allowed)) if allowed else "'none'"


def origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") else None
