"""Keeps every replica's redirect cache in step with the service's own events.

Each replica reads ``program.published``, ``participant.enrolled`` and ``participant.erased``
itself, with no consumer group (it assigns itself every partition), so every replica sees
every event. Forgetting a cache entry is idempotent and needs no database, so there is no
inbox and nothing to commit: a replica starts at the end of each partition (its cache is empty
then) and, after a broker outage, carries on from where it was (or from the earliest offset of
a broker that lost its log). The cache is cleared whenever the reader (re)positions, since an
event may have been missed meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter

from services.links.gateway.cache import RedirectCache
from shared.aio import sleep_unless
from shared.contracts import ParticipantEnrolled, ParticipantErased, ProgramPublished
from shared.messaging.topics import topic_partitions

log = logging.getLogger(__name__)

TOPICS = (ProgramPublished.TOPIC, ParticipantEnrolled.TOPIC, ParticipantErased.TOPIC)
INVALIDATIONS = Counter(
    "redirect_cache_invalidations_total", "Redirect cache entries dropped by events", ["topic"]
)


def apply(cache: RedirectCache, topic: str, value: bytes | None) -> None:
    """Forget what an event makes stale. Unreadable messages are ignored here: the consumers
    with an inbox dead-letter them."""
    try:
        data = json.loads(value or b"")
    except ValueError:
        return
    if not isinstance(data, dict):
        return
    if topic == ProgramPublished.TOPIC and "program_id" in data:
        cache.forget_program(str(data["program_id"]))
    elif topic == ParticipantEnrolled.TOPIC and "code" in data:
        cache.forget_code(str(data["code"]))  # a "no such code" remembered before
    elif topic == ParticipantErased.TOPIC and "participant_id" in data:
        cache.forget_participant(str(data["participant_id"]))
    else:
        return
    INVALIDATIONS.labels(topic).inc()


class CacheInvalidator:
    def __init__(self, cache: RedirectCache, *, bootstrap_servers: str, fetch_max_wait_ms: int):
        self.cache = cache
        self.bootstrap_servers = bootstrap_servers
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.positioned = asyncio.Event()
        self._positions: dict[TopicPartition, int] = {}

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.2
        while not stop.is_set():
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap_servers,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=self.fetch_max_wait_ms,
            )
            try:
                await consumer.start()
                await self._position(consumer)
                backoff = 0.2
                while not stop.is_set():
                    batches = await consumer.getmany(timeout_ms=500, max_records=1000)
                    for tp, records in batches.items():
                        for record in records:
                            apply(self.cache, record.topic, record.value)
                        self._positions[tp] = records[-1].offset + 1
            except (KafkaError, OSError) as exc:
                log.warning("redirect cache reader lost the broker, retrying: %r", exc)
                await sleep_unless(stop, backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()

    async def _position(self, consumer: AIOKafkaConsumer) -> None:
        parts = await topic_partitions(consumer, TOPICS)
        if not parts:
            raise KafkaError("redirect cache topics not found")
        consumer.assign(parts)
        for tp in parts:
            if tp in self._positions:
                consumer.seek(tp, self._positions[tp])
            else:
                await consumer.seek_to_end(tp)
                self._positions[tp] = await consumer.position(tp)
        self.cache.clear()
        self.positioned.set()
