"""How a service declares what it consumes: one :class:`ConsumerGroup` per Kafka consumer
group, listed by the service's ``consumers.py``; the service factory builds and runs them all
from that list and the settings, so no service constructs a consumer by hand."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaProducer

from shared.messaging.consumer import EventConsumer, Handler
from shared.settings import ServiceSettings


@dataclass(frozen=True)
class ConsumerGroup:
    """One consumer group: its topics with their per-message handlers, and the consumer class
    that applies them (a :class:`~shared.messaging.batch.BatchConsumer` subclass for a busy
    topic whose events are applied as a set). ``name`` defaults to the service's name."""

    handlers: Mapping[str, Handler]
    name: str | None = None
    consumer: type[EventConsumer] = EventConsumer
    # Busy topics read bigger polls than the service's ``consumer_batch_size``.
    min_batch_size: int = 0


def build_consumer(
    group: ConsumerGroup,
    settings: ServiceSettings,
    pool: asyncpg.Pool,
    producer: AIOKafkaProducer,
) -> EventConsumer:
    return group.consumer(
        name=group.name or settings.service_name,
        pool=pool,
        producer=producer,
        handlers=dict(group.handlers),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        batch_size=max(settings.consumer_batch_size, group.min_batch_size),
        max_attempts=settings.consumer_max_attempts,
        retry_backoff_s=settings.consumer_retry_backoff_s,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        stall_timeout_s=settings.consumer_stall_timeout_s,
    )
