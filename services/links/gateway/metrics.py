"""Exports the redirect's plain counters at scrape time (no cost on the hot path)."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily

from services.links.gateway.redirect import Redirector


class RedirectCollector:
    def __init__(self) -> None:
        self.redirectors: list[Redirector] = []

    def collect(self) -> Any:
        family = CounterMetricFamily(
            "redirects",
            "Redirect answers by status (served by the raw-ASGI gateway)",
            labels=["status"],
        )
        totals: dict[str, int] = {}
        for r in self.redirectors:
            for status, n in r.answered().items():
                totals[status] = totals.get(status, 0) + n
        for status, n in sorted(totals.items()):
            family.add_metric([status], n)
        yield family
        yield CounterMetricFamily(
            "redirect_cache_misses",
            "Redirects that needed a database look-up",
            value=sum(r.misses for r in self.redirectors),
        )


COLLECTOR = RedirectCollector()
REGISTRY.register(COLLECTOR)  # type: ignore[arg-type]
