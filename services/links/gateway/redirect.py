"""``GET``/``HEAD /r/{code}``: answer from an in-process cache, capture the click off the path.

The work per request is kept tiny because every referred friend pays for it: a rate-limit
check, two dictionary look-ups, a click id, one string concatenation and a deque append. No
model, no log line, no database on a hit. A miss costs one indexed query. The raw-ASGI front
that calls :class:`Redirector` is in ``api.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from time import monotonic as _monotonic
from typing import Any
from urllib.parse import parse_qsl

from services.links.gateway import repository as repo
from services.links.gateway.cache import CodeEntry, ProgramView, RedirectCache
from services.links.gateway.clicks import ClickCapture
from services.links.gateway.ratelimit import RateLimiter
from services.links.participants.codes import CODE_CHARS_RE

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
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def _redirect(location: str) -> Answer:
    return 302, [(b"location", location.encode()), *_REDIRECT_TAIL], b""


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
