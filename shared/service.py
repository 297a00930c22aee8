"""What turns a service's routers and event handlers into a running process: the FastAPI app
with its lifespan (pool, producer, topics, outbox relay, consumer), conventions and telemetry."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import asyncpg
import uvicorn
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import APIRouter, FastAPI, Request
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.db import create_pool
from shared.http import health
from shared.http.key_directory import KeyDirectory
from shared.http.openapi import install_openapi
from shared.http.problems import install_problem_handlers
from shared.messaging.consumer import EventConsumer
from shared.messaging.groups import ConsumerGroup, build_consumer
from shared.messaging.producer import ensure_topics, make_producer
from shared.messaging.relay import OutboxRelay
from shared.metrics import HTTP_LATENCY, HTTP_REQUESTS
from shared.settings import ServiceSettings
from shared.telemetry import setup_logging, setup_tracing, shutdown_tracing

log = logging.getLogger(__name__)

Hook = Callable[["Runtime"], Awaitable[None]]
_SHUTDOWN_TIMEOUT_S = 10.0


@dataclass
class Runtime:
    """Everything a request handler or background task of one service process shares."""

    settings: ServiceSettings
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    relay: OutboxRelay | None
    consumers: list[EventConsumer]
    # Links' word on program keys whose events have not arrived (None in links, which
    # issues them, or when LINKS_INTERNAL_URL is unset).
    key_directory: KeyDirectory | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def spawn(self, coro: Awaitable[None], name: str) -> None:
        self.tasks.append(asyncio.create_task(coro, name=name))  # type: ignore[arg-type]


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


async def start_producer(settings: ServiceSettings, attempts: int = 30) -> AIOKafkaProducer:
    """Start a producer, waiting for the broker (it may start after us)."""
    for attempt in range(1, attempts + 1):
        producer = make_producer(settings)
        try:
            await producer.start()
            return producer
        except (KafkaError, OSError) as exc:
            await producer.stop()
            if attempt == attempts:
                raise
            log.warning("broker not reachable yet (%r), retrying", exc)
            await asyncio.sleep(1.0)
    raise AssertionError("unreachable")


def create_service_app(
    *,
    settings: ServiceSettings,
    title: str,
    routers: Sequence[APIRouter] = (),
    consumers: Sequence[ConsumerGroup] = (),
    relays_outbox: bool = True,
    asks_links_about_keys: bool = True,
    on_start: Hook | None = None,
    on_stop: Hook | None = None,
) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await create_pool(
            settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
        )
        producer = await start_producer(settings)
        await ensure_topics(settings)
        # A process that never writes to the outbox (the links gateway role) runs no relay:
        # it would hold a database connection for nothing.
        relay = (
            OutboxRelay(
                dsn=settings.database_url,
                producer=producer,
                batch_size=settings.relay_batch_size,
                poll_interval_s=settings.relay_poll_interval_s,
                retention_hours=settings.outbox_retention_hours,
            )
            if relays_outbox
            else None
        )
        runtime = Runtime(
            settings,
            pool,
            producer,
            relay,
            [build_consumer(group, settings, pool, producer) for group in consumers],
            KeyDirectory.from_settings(settings) if asks_links_about_keys else None,
        )
        app.state.runtime = runtime
        if relay is not None:
            runtime.spawn(relay.run(runtime.stop), "outbox-relay")
        for consumer in runtime.consumers:
            runtime.spawn(consumer.run(runtime.stop), f"consumer-{consumer.name}")
        if on_start is not None:
            await on_start(runtime)
        log.info("%s started", settings.service_name)
        try:
            yield
        finally:
            runtime.stop.set()
            _, pending = await asyncio.wait(runtime.tasks, timeout=_SHUTDOWN_TIMEOUT_S)
            for task in pending:
                task.cancel()
            if on_stop is not None:
                await on_stop(runtime)
            if runtime.key_directory is not None:
                await runtime.key_directory.close()
            await producer.stop()
            await pool.close()
            log.info("%s stopped", settings.service_name)

    app = FastAPI(title=title, version="1.0.0", lifespan=lifespan)
    install_problem_handlers(app)
    app.include_router(health.router)
    for router in routers:
        app.include_router(router)
    install_openapi(app, asks_links_about_keys)

    # A plain ASGI middleware: ``@app.middleware("http")`` would run every request through
    # a task group and memory streams, a measurable share of a small request's cost.
    app.add_middleware(_HttpMetrics)

    # ASGI receive/send sub-spans add nothing an operator reads; leave them out.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="healthz,readyz,metrics", exclude_spans=["receive", "send"]
    )
    return app


class _HttpMetrics:
    """Requests and latency per route template (the matched route is known after the call)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = "500"

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = str(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            HTTP_REQUESTS.labels(method, route, status).inc()
            HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)


def _traces_exported() -> bool:
    default = "otlp" if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") else "none"
    names = {n.strip() for n in os.environ.get("OTEL_TRACES_EXPORTER", default).split(",")}
    return bool(names - {"none", ""})


def serve(app: ASGIApp, settings: ServiceSettings) -> None:
    """Run one service process. Process-wide set-up (logging, tracing, client
    instrumentation) happens here, not in the app factory, so tests can build apps freely."""
    setup_logging(settings.service_name, settings.log_level)
    setup_tracing(settings.service_name)
    if _traces_exported():
        # A span per SQL statement costs about a tenth of a consumer's CPU: worth it only
        # when the spans go somewhere (request and message spans are kept regardless, for
        # the trace context that travels with events and the ids in log lines).
        AsyncPGInstrumentor().instrument()
    HTTPXClientInstrumentor().instrument()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(_SHUTDOWN_TIMEOUT_S),
    )
    shutdown_tracing()  # flush the last spans
