"""Starting and stopping the gateway's parts inside a service process: the click producer,
the capture (buffer, journal, writer and sender tasks), the redirect cache with its event
reader, and the redirector the raw-ASGI front calls."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from services.links.gateway.cache import RedirectCache
from services.links.gateway.cache_events import CacheInvalidator
from services.links.gateway.clicks import ClickCapture
from services.links.gateway.metrics import COLLECTOR
from services.links.gateway.ratelimit import RateLimiter
from services.links.gateway.redirect import Redirector
from services.links.gateway.visitors import BotDetector, VisitorHasher
from services.links.settings import LinksSettings
from shared.messaging.producer import make_producer
from shared.service import Runtime


async def start_gateway(app: FastAPI, rt: Runtime, settings: LinksSettings) -> None:
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
    cache = RedirectCache(
        max_codes=settings.redirect_cache_codes, ttl_s=settings.redirect_cache_ttl_s
    )
    redirector = Redirector(
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
    COLLECTOR.redirectors.append(redirector)
    app.state.slot.redirector = redirector
    # What exists after start-up lives as long as the process: keep the collector off it.
    gc.freeze()


async def stop_gateway(app: FastAPI) -> None:
    redirector = app.state.slot.redirector
    if redirector in COLLECTOR.redirectors:
        COLLECTOR.redirectors.remove(redirector)
    app.state.slot.redirector = None
    app.state.capture.close()
    await app.state.click_producer.stop()
