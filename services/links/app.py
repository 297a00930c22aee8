"""The links gateway: programs, participants, keys, and the public redirect.

The app is FastAPI, with a raw-ASGI :class:`~services.links.redirect.Gateway` in front of its
middleware stack that answers ``GET``/``HEAD /r/{code}`` itself (see redirect.py)."""

from __future__ import annotations

import gc
from typing import Any

from fastapi import FastAPI
from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily

from services.links import api, redirect
from services.links.analytics import api as analytics_api
from services.links.analytics import pages
from services.links.cache_events import CacheInvalidator
from services.links.clicks import ClickCapture
from services.links.consumers import consumer_groups
from services.links.ratelimit import RateLimiter
from services.links.settings import LinksSettings
from services.links.visitors import BotDetector, VisitorHasher
from shared.messaging.producer import make_producer
from shared.service import Runtime, create_service_app


class _RedirectCollector:
    """Exports the redirect's plain counters at scrape time (no cost on the hot path)."""

    def __init__(self) -> None:
        self.redirectors: list[redirect.Redirector] = []

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


_COLLECTOR = _RedirectCollector()
REGISTRY.register(_COLLECTOR)  # type: ignore[arg-type]


def create_app(settings: LinksSettings | None = None) -> FastAPI:
    settings = settings or LinksSettings()
    app: FastAPI

    async def on_start(rt: Runtime) -> None:
        # Clicks have their own producer: large batches, and a click backlog never delays
        # the outbox relay's events.
        click_producer = make_producer(
            settings, client_id=f"{settings.service_name}-clicks", max_batch_size=512 * 1024,
            linger_ms=5,
        )  # fmt: skip
        await click_producer.start()
        app.state.click_producer = click_producer
        capture = ClickCapture(
            click_producer,
            journal_dir=settings.journal_path(),
            hasher=VisitorHasher(settings.visitor_secret()),
            bots=BotDetector(settings.click_allowed_agents),
            max_buffer=settings.click_buffer_size,
            batch_size=settings.click_batch_size,
            send_timeout_s=settings.click_send_timeout_s,
        )
        capture.open()
        cache = redirect.RedirectCache(
            max_codes=settings.redirect_cache_codes, ttl_s=settings.redirect_cache_ttl_s
        )
        redirector = redirect.Redirector(
            pool=rt.pool,
            capture=capture,
            cache=cache,
            limiter=RateLimiter(settings.redirect_rate_per_s, settings.redirect_burst),
        )
        invalidator = CacheInvalidator(
            cache,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        )
        app.state.capture = capture
        app.state.cache = cache
        app.state.invalidator = invalidator
        rt.spawn(capture.run_writer(rt.stop), "click-writer")
        rt.spawn(capture.run_sender(rt.stop), "click-sender")
        rt.spawn(invalidator.run(rt.stop), "redirect-cache-events")
        _COLLECTOR.redirectors.append(redirector)
        app.state.slot.redirector = redirector
        # What exists after start-up lives as long as the process: keep the collector off it.
        gc.freeze()

    async def on_stop(rt: Runtime) -> None:
        redirector = app.state.slot.redirector
        if redirector in _COLLECTOR.redirectors:
            _COLLECTOR.redirectors.remove(redirector)
        app.state.slot.redirector = None
        app.state.capture.close()
        await app.state.click_producer.stop()

    app = create_service_app(
        settings=settings,
        title="Referral links gateway",
        routers=[api.router, api.public, redirect.router, analytics_api.router, pages.router],
        consumers=consumer_groups(settings),
        on_start=on_start,
        on_stop=on_stop,
    )
    install_gateway(app)
    return app


class RedirectSlot:
    """Where the gateway finds the redirector (None until the app has started)."""

    redirector: redirect.Redirector | None = None


def install_gateway(app: FastAPI) -> None:
    """Put the raw-ASGI redirect in front of whatever middleware stack the app builds
    (Starlette builds it lazily on the first call through ``build_middleware_stack``), so
    that the app answers redirects fast however it is served. ``python -m services.links``
    also puts one in front of FastAPI itself."""
    build = app.build_middleware_stack
    app.state.slot = RedirectSlot()

    def build_with_gateway() -> Any:
        return redirect.Gateway(build(), app.state.slot)

    app.build_middleware_stack = build_with_gateway  # type: ignore[method-assign]
