"""Per-IP token buckets for the redirect, in memory and per replica (N replicas behind a
balancer allow up to N times the rate; that is accepted: this guards the service, it is not a
quota). The IP is only a dictionary key here and is never stored or logged."""

from __future__ import annotations

import math


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: float, max_tracked: int = 100_000) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self.max_tracked = max_tracked
        # ip -> (tokens, last refill time); tuples of floats are not tracked by the garbage
        # collector, so a large table costs no collection time.
        self._buckets: dict[str, tuple[float, float]] = {}

    def retry_after(self, ip: str, now: float) -> int:
        """0 if the request may go ahead (and takes a token), else seconds to wait."""
        bucket = self._buckets.get(ip)
        if bucket is None:
            if len(self._buckets) >= self.max_tracked:
                # Idle buckets are full anyway; forgetting them all is cheap and safe.
                self._buckets.clear()
            self._buckets[ip] = (self.burst - 1.0, now)
            return 0
        tokens = bucket[0] + (now - bucket[1]) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        if tokens >= 1.0:
            self._buckets[ip] = (tokens - 1.0, now)
            return 0
        self._buckets[ip] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self.rate))
