"""Attribution: clicks, referees, signups and conversions."""

from __future__ import annotations

from fastapi import FastAPI

from services.attribution import api, review_api
from services.attribution.click_ingest import ClickConsumer
from services.attribution.consumers import CLICKS_CONSUMER, handlers_for
from services.attribution.settings import AttributionSettings
from shared.service import Runtime, create_service_app


async def _start_click_consumer(runtime: Runtime) -> None:
    settings = runtime.settings
    consumer = ClickConsumer(
        name=CLICKS_CONSUMER,
        pool=runtime.pool,
        producer=runtime.producer,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        # Clicks come in bulk: larger batches than the other topics.
        batch_size=max(settings.consumer_batch_size, 500),
        max_attempts=settings.consumer_max_attempts,
        retry_backoff_s=settings.consumer_retry_backoff_s,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        session_timeout_ms=settings.kafka_session_timeout_ms,
    )
    runtime.spawn(consumer.run(runtime.stop), "click-consumer")


def create_app(settings: AttributionSettings | None = None) -> FastAPI:
    settings = settings or AttributionSettings()
    return create_service_app(
        settings=settings,
        title="Referral attribution",
        routers=[api.router, review_api.router],
        handlers=handlers_for(settings),
        on_start=_start_click_consumer,
    )
