"""How many messages wait in each dead-letter topic: end minus beginning offset of every
``*.dlq`` topic, summed over its partitions (what the console shows)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from aiokafka import AIOKafkaConsumer

from shared.messaging.topics import topic_partitions
from shared.settings import ServiceSettings

_CACHE_S = 10.0
_cache: dict[str, tuple[float, dict[str, int]]] = {}


async def dlq_sizes(settings: ServiceSettings, *, max_age_s: float = _CACHE_S) -> dict[str, int]:
    """Messages per DLQ topic (topics with none included). Cached for ``max_age_s`` per
    broker, since every console view asks."""
    servers = settings.kafka_bootstrap_servers
    cached = _cache.get(servers)
    if cached is not None and time.monotonic() - cached[0] < max_age_s:
        return cached[1]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=servers, enable_auto_commit=False, request_timeout_ms=10_000
    )
    await consumer.start()
    try:
        partitions = [tp for tp in await topic_partitions(consumer) if tp.topic.endswith(".dlq")]
        topics = sorted({tp.topic for tp in partitions})
        sizes = dict.fromkeys(topics, 0)
        if partitions:
            begin, end = await asyncio.gather(
                consumer.beginning_offsets(partitions), consumer.end_offsets(partitions)
            )
            for tp in partitions:
                sizes[tp.topic] += max(0, end[tp] - begin[tp])
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
    _cache[servers] = (time.monotonic(), sizes)
    return sizes
