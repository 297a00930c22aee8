"""``GET``/``HEAD /r/{code}``: answer from an in-process cache, capture the click off the path.

The work per request is kept tiny because every referred friend pays for it: a rate-limit
check, two dictionary look-ups, a click id, one string concatenation and a deque append. No
model, no log line, no database on a hit. A miss costs one indexed query. :class:`Gateway` is a
raw-ASGI front that answers these requests itself and passes everything else to FastAPI; the
FastAPI route below runs the same code and documents the endpoint in OpenAPI.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from dataclasses import dataclass
from time import monotonic as _monotonic
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.links import repository as repo
from services.links.clicks import ClickCapture
from services.links.codes import CODE_CHARS_RE
from services.links.ratelimit import RateLimiter

router = APIRouter(tags=["redirect"])
log = logging.getLogger(__name__)

ASGIHeaders = list[tuple[bytes, bytes]]
Answer = tuple[int, ASGIHeaders, bytes]

_CHANNEL_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_MAX_UTM = 10
_NOT_FOUND_BODY = b"<!doctype html><title>Not found</title><h1>Link not found</h1>"
_NOT_FOUND: Answer = (
    404,
    [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(_NOT_FOUND_BODY)).encode()),
        (b"cache-control", b"no-store"),
    ],
    _NOT_FOUND_BODY,
)
_UNAVAILABLE_BODY = (
    b'{"type":"https://referral-platform.dev/problems/unavailable","title":"Service '
    b'unavailable","status":503,"detail":"The link cannot be looked up right now; retry"}'
)
_UNAVAILABLE: Answer = (
    503,
    [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(_UNAVAILABLE_BODY)).encode()),
        (b"retry-after", b"1"),
    ],
    _UNAVAILABLE_BODY,
)
_REDIRECT_TAIL: ASGIHeaders = [(b"content-length", b"0"), (b"cache-control", b"private, no-store")]
_MARK = "CLICKID7MARK"
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def with_params(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _redirect(location: str) -> Answer:
    return 302, [(b"location", location.encode()), *_REDIRECT_TAIL], b""


@dataclass
class ProgramView:
    """What the redirect needs of the program version in force, valid until ``expires``
    (a monotonic time: the TTL, or the moment a scheduled version takes over)."""

    program_id: str
    active: bool
    destination: str
    click_param: str
    channel_param: str
    fallback: str | None
    expires: float
    # The location is prefix + click id + suffix (a fragment, if the destination has one).
    prefix: str = ""
    suffix: str = ""

    def __post_init__(self) -> None:
        marked = with_params(self.destination, {self.click_param: _MARK})
        self.prefix, _, self.suffix = marked.partition(_MARK)

    def location(self, click_id: str, extra: dict[str, str] | None) -> str:
        if not extra:
            return self.prefix + click_id + self.suffix
        return with_params(self.destination, {self.click_param: click_id, **extra})


@dataclass
class CodeEntry:
    code: str  # as stored (a vanity code matches whatever its case in the request)
    participant_id: str
    program_id: str
    active: bool  # False once the participant is erased
    expires: float


class RedirectCache:
    """code -> CodeEntry and program id -> ProgramView, bounded (oldest entries go first).
    Entries expire after ``ttl_s`` as a backstop; events invalidate them at once."""

    def __init__(self, max_codes: int = 200_000, ttl_s: float = 300.0, miss_ttl_s: float = 5.0):
        self.max_codes = max_codes
        self.ttl_s = ttl_s
        self.miss_ttl_s = miss_ttl_s
        self.codes: dict[str, CodeEntry | float] = {}  # a float: unknown until that time
        self.programs: dict[str, ProgramView] = {}

    def put_code(self, code: str, entry: CodeEntry | float) -> None:
        codes = self.codes
        if len(codes) >= self.max_codes:
            # Insertion order: drop the oldest tenth in one go.
            for stale in list(iter(codes))[: self.max_codes // 10 or 1]:
                del codes[stale]
        codes[code] = entry

    def forget_code(self, code: str) -> None:
        self.codes.pop(code, None)

    def forget_program(self, program_id: str) -> None:
        self.programs.pop(program_id, None)

    def forget_participant(self, participant_id: str) -> None:
        for code, entry in list(self.codes.items()):
            if isinstance(entry, CodeEntry) and entry.participant_id == participant_id:
                del self.codes[code]

    def clear(self) -> None:
        self.codes.clear()
        self.programs.clear()


class Redirector:
    def __init__(
        self,
        *,
        pool: Any,
        capture: ClickCapture,
        cache: RedirectCache,
        limiter: RateLimiter,
    ) -> None:
        self.pool = pool
        self.capture = capture
        self.cache = cache
        self.limiter = limiter
        self._buf = capture.buffer
        self._max_buffer = capture.max_buffer
        self._ids = ""
        self._at = 0
        # Plain counters (no lock, no label look-up); exported by a collector at scrape time.
        self.redirects = 0
        self.fallbacks = 0
        self.not_found = 0
        self.limited = 0
        self.misses = 0
        self._lookups: dict[str, asyncio.Future[Any]] = {}

    def answered(self) -> dict[str, int]:
        return {
            "302": self.redirects + self.fallbacks,
            "404": self.not_found,
            "429": self.limited,
        }

    async def answer(self, scope: dict[str, Any]) -> Answer:
        answer = self.hit(scope)
        if answer is None:
            answer = await self.answer_miss(scope)
        return answer

    def hit(self, scope: dict[str, Any]) -> Answer | None:
        """The whole answer when the cache knows the code (the hot path); None on a miss."""
        client = scope["client"]
        ip = client[0] if client else ""
        now = _monotonic()
        wait = self.limiter.retry_after(ip, now)
        if wait:
            self.limited += 1
            return _too_many(wait)
        code = scope["path"][3:]
        entry = self.cache.codes.get(code)
        if entry is None:
            return None
        if entry.__class__ is float:
            if entry > now:  # type: ignore[operator]
                self.not_found += 1
                return _NOT_FOUND
            return None
        if entry.expires < now:  # type: ignore[union-attr]
            return None
        view = self.cache.programs.get(entry.program_id)  # type: ignore[union-attr]
        if view is None or view.expires < now:
            return None
        return self._follow(scope, entry, view, ip, now)  # type: ignore[arg-type]

    async def answer_miss(self, scope: dict[str, Any]) -> Answer:
        code = scope["path"][3:]
        now = _monotonic()
        self.misses += 1
        if not CODE_CHARS_RE.match(code):
            self.not_found += 1
            return _NOT_FOUND
        # One query per code however many requests miss it at once (a hot code after a change).
        lookup = self._lookups.get(code)
        if lookup is None:
            lookup = self._lookups[code] = asyncio.ensure_future(repo.resolve_code(self.pool, code))
            lookup.add_done_callback(lambda _: self._lookups.pop(code, None))
        try:
            row = await asyncio.shield(lookup)
        except Exception:  # the database is away: say so, the friend can retry
            log.warning("redirect look-up failed", exc_info=True)
            return _UNAVAILABLE
        if row is None or row["definition"] is None:
            self.cache.put_code(code, now + self.cache.miss_ttl_s)
            self.not_found += 1
            return _NOT_FOUND
        expires = now + self.cache.ttl_s
        next_change = row["seconds_to_next_version"]
        definition = row["definition"]
        links = definition.get("links") or {}
        view = ProgramView(
            program_id=str(row["program_id"]),
            active=row["status"] == "active",
            destination=definition["destination_url"],
            click_param=definition.get("click_id_param", "ref_click"),
            channel_param=links.get("channel_param", "ref_channel"),
            fallback=definition.get("fallback_url"),
            expires=expires if next_change is None else min(expires, now + next_change),
        )
        entry = CodeEntry(
            code=row["code"],
            participant_id=str(row["participant_id"]),
            program_id=view.program_id,
            active=row["active"],
            expires=expires,
        )
        self.cache.programs[view.program_id] = view
        self.cache.put_code(code, entry)
        client = scope["client"]
        return self._follow(scope, entry, view, client[0] if client else "", now)

    def _follow(
        self, scope: dict[str, Any], entry: CodeEntry, view: ProgramView, ip: str, now: float
    ) -> Answer:
        if not (entry.active and view.active):
            if view.fallback:
                self.fallbacks += 1
                return _redirect(view.fallback)
            self.not_found += 1
            return _NOT_FOUND
        # The click id, inline: a random (version 4) UUID from bytes drawn 4096 ids at a time.
        at = self._at
        if at >= len(self._ids):
            self._ids = os.urandom(16 * 4096).hex()
            at = 0
        self._at = at + 32
        h = self._ids[at : at + 32]
        click_id = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"
        channel = extra = None
        if scope["query_string"]:
            channel, extra = _share_params(scope["query_string"], view.channel_param)
        # The user agent and prefetch headers are read by the click writer, off this path.
        buf = self._buf
        if len(buf) < self._max_buffer:
            buf.append(
                (
                    click_id,
                    entry.code,
                    view.program_id,
                    entry.participant_id,
                    now,
                    ip,
                    scope["headers"],
                    scope["method"] == "HEAD",
                    channel,
                )
            )
            if self.capture.idle:
                self.capture.wake()
        else:
            self.capture.dropped += 1
        self.redirects += 1
        if extra is None:
            location = view.prefix + click_id + view.suffix
        else:
            location = view.location(click_id, extra)
        return 302, [(b"location", location.encode()), *_REDIRECT_TAIL], b""


def _share_params(query: bytes, channel_param: str) -> tuple[str | None, dict[str, str] | None]:
    """The channel (``ch``) and UTM parameters a share link carries; nothing else is taken
    from the request, so the destination can never be chosen by it."""
    channel = None
    extra: dict[str, str] = {}
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=False)[:50]:
        if key == "ch" and channel is None and _CHANNEL_RE.match(value):
            channel = value
        elif key.startswith("utm_") and len(key) <= 40 and len(value) <= 200:
            if len(extra) < _MAX_UTM:
                extra[key] = value
    if channel is not None:
        extra[channel_param] = channel
    return channel, extra or None


def _too_many(retry_after: int) -> Answer:
    body = json.dumps(
        {
            "type": "https://referral-platform.dev/problems/rate-limited",
            "title": "Too many requests",
            "status": 429,
            "detail": f"Too many requests from this address; retry in {retry_after}s",
        }
    ).encode()
    return (
        429,
        [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(retry_after).encode()),
        ],
        body,
    )


class Gateway:
    """Raw-ASGI front of the FastAPI app: ``GET``/``HEAD /r/{code}`` is answered here, with
    no framework in the way; every other request goes to FastAPI untouched. ``slot`` holds the
    redirector once the app has started (None before: then FastAPI's route answers)."""

    def __init__(self, app: Any, slot: Any) -> None:
        self.app = app
        self.slot = slot

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            redirector = self.slot.redirector
            if (
                redirector is not None
                and path.startswith("/r/")
                and path.find("/", 3) < 0
                and ((method := scope["method"]) == "GET" or method == "HEAD")
            ):
                answer = redirector.hit(scope)
                if answer is None:
                    answer = await redirector.answer_miss(scope)
                await send({"type": "http.response.start", "status": answer[0],
                            "headers": answer[1]})  # fmt: skip
                await send({"type": "http.response.body",
                            "body": b"" if method == "HEAD" else answer[2]})  # fmt: skip
                return
        await self.app(scope, receive, send)


@router.get(
    "/r/{code}",
    status_code=302,
    response_class=Response,
    responses={
        302: {"description": "To the program destination, with the click id appended"},
        404: {"description": "Unknown or disabled code (no fallback URL)"},
        429: {"description": "Too many requests from this address"},
    },
    summary="Follow a referral link",
)
async def follow(code: str, request: Request) -> Response:
    """Served by the raw-ASGI :class:`Gateway` in front of FastAPI; this route runs the same
    code when the app is mounted without it. Query: ``ch`` (share channel) and ``utm_*``."""
    redirector: Redirector | None = request.app.state.slot.redirector
    if redirector is None:
        return Response(status_code=503, headers={"Retry-After": "1"})
    status, headers, body = await redirector.answer(request.scope)
    out = Response(body, status_code=status)
    for name, value in headers:
        if name != b"content-length":
            out.headers[name.decode()] = value.decode()
    return out


router.add_api_route("/r/{code}", follow, methods=["HEAD"], include_in_schema=False)
