"""Who clicked, without keeping who they are: a visitor is a hash of (IP, user agent) under a
salt that rotates daily, so hashes cannot be joined across days and the IP is never stored.
Also: which clicks are bots (the maintained ``crawlerdetect`` list) and which repeat a
visitor's click on the same code within an hour (counted once)."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from datetime import UTC, datetime

from crawlerdetect import CrawlerDetect

UNIQUE_WINDOW_S = 3600.0


class VisitorHasher:
    """Keyed BLAKE2b (a MAC, and fast) of ``ip|user agent`` under a per-day key derived
    from a secret with HMAC-SHA256."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._day = -1
        self._key = b""

    def key_for(self, ts: float) -> bytes:
        day = int(ts // 86400)  # UTC days since the epoch
        if day != self._day:
            name = datetime.fromtimestamp(day * 86400, UTC).strftime("%Y-%m-%d")
            self._key = hmac.new(self._secret, name.encode(), hashlib.sha256).digest()
            self._day = day
        return self._key

    def visitor(self, ts: float, ip: str, user_agent: str) -> str:
        msg = f"{ip}|{user_agent}".encode(errors="replace")
        return hashlib.blake2b(msg, key=self.key_for(ts), digest_size=16).hexdigest()


class UniqueClicks:
    """Remembers (visitor, code) for an hour, in bounded memory. Two generations of at most
    ``max_entries`` each: when the current one is full or an hour old it becomes the previous
    one and the previous one is forgotten. Forgetting early can only count a repeat as unique,
    never a first click as a repeat. Per replica: the ``visitor_hash`` in the event lets a
    consumer de-duplicate across replicas."""

    def __init__(self, window_s: float = UNIQUE_WINDOW_S, max_entries: int = 500_000) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self._current: dict[str, float] = {}
        self._previous: dict[str, float] = {}
        self._started = time.monotonic()

    def first_in_window(self, visitor: str, code: str, now: float) -> bool:
        if len(self._current) >= self.max_entries or now - self._started >= self.window_s:
            self._previous, self._current = self._current, {}
            self._started = now
        key = f"{visitor}:{code}"
        seen = self._current.get(key)
        if seen is None:
            seen = self._previous.get(key)
        if seen is not None and now - seen < self.window_s:
            return False
        self._current[key] = now
        return True


class BotDetector:
    """``crawlerdetect`` costs ~30 µs per user agent, so answers are cached (bounded).
    ``allowed`` matches agents that crawlerdetect lists but that act for a person (an app's
    HTTP stack resolving a link for its user)."""

    def __init__(self, allowed: str = "", max_cached: int = 20_000) -> None:
        self._detector = CrawlerDetect()
        self._allowed = re.compile(allowed) if allowed else None
        self._cache: dict[str, bool] = {}
        self.max_cached = max_cached

    def is_bot(self, user_agent: str) -> bool:
        answer = self._cache.get(user_agent)
        if answer is None:
            if not user_agent.strip():
                answer = True
            elif self._allowed is not None and self._allowed.search(user_agent):
                answer = False
            else:
                answer = bool(self._detector.isCrawler(user_agent))
            if len(self._cache) >= self.max_cached:
                self._cache.clear()
            self._cache[user_agent] = answer
        return answer


_PREFETCH_HEADERS = (b"purpose", b"sec-purpose", b"x-purpose", b"x-moz")


def agent_and_prefetch(headers: list[tuple[bytes, bytes]]) -> tuple[str, bool]:
    """The request's user agent, and whether the browser said it only prefetches."""
    user_agent = ""
    prefetch = False
    for name, value in headers:
        if name == b"user-agent":
            user_agent = value.decode("latin-1")
        elif name in _PREFETCH_HEADERS and b"prefetch" in value.lower():
            prefetch = True
    return user_agent, prefetch


def non_attributable_reason(
    head: bool, prefetch: bool, user_agent: str, bots: BotDetector
) -> str | None:
    """Why a click cannot be a person's invite (None if it can)."""
    if head:
        return "head"
    if prefetch:
        return "prefetch"
    if bots.is_bot(user_agent):
        return "bot"
    return None
