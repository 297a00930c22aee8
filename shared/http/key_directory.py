"""Asking links, which issues program keys, about a key: so that a key works everywhere from the
moment links shows it, and stops everywhere soon after links revokes it.

Keys reach every service as ``apikey.issued`` / ``apikey.revoked`` events, which can be late
(consumer lag, a paused broker). ``KeyDirectory`` asks links' internal endpoint
(``GET /v1/internal/keys/{key_hash}``, with the admin key) and remembers the answer:

- a key links holds active is trusted for ``key_check_ttl_s``, then asked about again (also
  when this service knows it from events: that is what bounds a late revocation);
- a key links does not know, or has revoked, is remembered for ``key_check_negative_ttl_s``,
  so a flood of bad keys reaches links once per key per that time at most;
- one call per key is in flight (concurrent requests with that key wait for it), and calls for
  keys this service has not heard of are bounded by a token bucket (``key_check_rate_per_s``;
  re-confirming keys known from their events is bounded by their number, which no caller
  controls, so it never takes a new key's turn). Beyond the bucket, or when
  links cannot be reached or answers oddly, the caller gets ``KeyCheckUnavailable``: the
  request is refused (503), never let through on a guess;
- after a failed call links is left alone for ``retry_after_s`` (a fifth of the TTL, at least
  1 s): requests meanwhile get ``KeyCheckUnavailable`` at once instead of each waiting for a
  timeout from a stalled links.

See docs/architecture.md, "Keys are stored hashed and travel as events"."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

import httpx

from shared.metrics import KEY_CHECKS
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

INTERNAL_KEYS_PATH = "/v1/internal/keys"
_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class KeyStatus:
    program_id: UUID
    revoked: bool


class KeyCheckUnavailable(Exception):
    """Links could not be asked (unreachable, too many calls, or an unexpected answer)."""


class TokenBucket:
    """At most ``rate`` takes per second on average, ``burst`` at once."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class KeyDirectory:
    def __init__(
        self,
        base_url: str,
        admin_key: str,
        *,
        ttl_s: float,
        negative_ttl_s: float,
        rate_per_s: float,
        timeout_s: float,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = base_url.rstrip("/") + INTERNAL_KEYS_PATH
        self._headers = {"Authorization": f"Bearer {admin_key}"}
        self._ttl_s = ttl_s
        self._negative_ttl_s = negative_ttl_s
        self._timeout_s = timeout_s
        self._client = client or httpx.AsyncClient()
        self._clock = clock
        self._bucket = TokenBucket(rate_per_s, max(1.0, rate_per_s), clock)
        self.retry_after_s = max(1.0, ttl_s / 5)
        self._down_until = float("-inf")
        # key hash -> (what links said, None for "no such key"; monotonic expiry)
        self._cache: dict[str, tuple[KeyStatus | None, float]] = {}
        self._inflight: dict[str, asyncio.Future[KeyStatus | None]] = {}

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> KeyDirectory | None:
        if not settings.links_internal_url or settings.admin_api_key is None:
            return None
        return cls(
            settings.links_internal_url,
            settings.admin_api_key.get_secret_value(),
            ttl_s=settings.key_check_ttl_s,
            negative_ttl_s=settings.key_check_negative_ttl_s,
            rate_per_s=settings.key_check_rate_per_s,
            timeout_s=settings.key_check_timeout_s,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def status(self, key_hash: str, *, known_here: bool = False) -> KeyStatus | None:
        """What links says about this key (None: links never issued it). ``known_here``: the
        service has the key from its event (a re-confirmation, outside the rate bound)."""
        cached = self._cache.get(key_hash)
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        pending = self._inflight.get(key_hash)
        if pending is None:
            if self._clock() < self._down_until:
                raise KeyCheckUnavailable("links failed a moment ago")
            if not known_here and not self._bucket.take():
                KEY_CHECKS.labels("throttled").inc()
                raise KeyCheckUnavailable("too many key checks at once")
            pending = asyncio.ensure_future(self._ask(key_hash))
            self._inflight[key_hash] = pending
            pending.add_done_callback(lambda done: self._settled(key_hash, done))
        # A caller that gives up (client gone) must not cancel the others' answer.
        return await asyncio.shield(pending)

    def _settled(self, key_hash: str, done: asyncio.Future[KeyStatus | None]) -> None:
        self._inflight.pop(key_hash, None)
        if not done.cancelled():
            done.exception()  # retrieved here so an unawaited failure is not reported twice

    async def _ask(self, key_hash: str) -> KeyStatus | None:
        try:
            return await self._call(key_hash)
        except KeyCheckUnavailable:
            self._down_until = self._clock() + self.retry_after_s
            raise

    async def _call(self, key_hash: str) -> KeyStatus | None:
        try:
            response = await self._client.get(
                f"{self._url}/{key_hash}", headers=self._headers, timeout=self._timeout_s
            )
        except httpx.HTTPError as exc:
            KEY_CHECKS.labels("unreachable").inc()
            log.warning("links could not be asked about a key: %r", exc)
            raise KeyCheckUnavailable("links cannot be reached") from exc
        if response.status_code == 404:
            status = None
        elif response.status_code == 200:
            body = response.json()
            status = KeyStatus(UUID(body["program_id"]), bool(body["revoked"]))
        else:
            KEY_CHECKS.labels("failed").inc()
            log.warning("links answered %s to a key check", response.status_code)
            raise KeyCheckUnavailable(f"links answered {response.status_code}")
        active = status is not None and not status.revoked
        KEY_CHECKS.labels("active" if active else "refused").inc()
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        ttl = self._ttl_s if active else self._negative_ttl_s
        self._cache[key_hash] = (status, self._clock() + ttl)
        return status
