"""Click capture off the redirect path. Clicks are too many for the outbox: the redirect hands
each one to a bounded in-memory buffer, and a background task publishes them in batches.
A batch that fails stays in the buffer and is retried; only a full buffer drops clicks, and
every drop is counted. On shutdown the buffer is flushed."""

from __future__ import annotations

import asyncio
import collections
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge

from shared.aio import sleep_unless
from shared.contracts import LinkClicked
from shared.messaging.envelope import Envelope

log = logging.getLogger(__name__)

CLICKS_BUFFERED = Gauge("clicks_buffered", "Clicks waiting in memory to be published")
CLICKS_PUBLISHED = Counter("clicks_published_total", "Clicks published to link.clicked")
CLICKS_DROPPED = Counter("clicks_dropped_total", "Clicks dropped because the buffer was full")
CLICKS_SEND_FAILURES = Counter("clicks_send_failures_total", "Failed click batch sends")


class ClickBuffer:
    def __init__(self, producer: AIOKafkaProducer, *, max_size: int, batch_size: int) -> None:
        self.producer = producer
        self.max_size = max_size
        self.batch_size = batch_size
        self._items: collections.deque[tuple[str, Envelope]] = collections.deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, event: LinkClicked, envelope: Envelope) -> bool:
        if len(self._items) >= self.max_size:
            CLICKS_DROPPED.inc()
            return False
        self._items.append((event.key(), envelope))
        CLICKS_BUFFERED.set(len(self._items))
        self._ready.set()
        return True

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.1
        while not stop.is_set():
            if not self._items:
                self._ready.clear()
                waiter = asyncio.create_task(self._ready.wait())
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                stopper.cancel()
                continue
            try:
                await self._send_batch()
                backoff = 0.1
            except (KafkaError, OSError) as exc:
                CLICKS_SEND_FAILURES.inc()
                log.warning("click batch not published, keeping it: %r", exc)
                await sleep_unless(stop, backoff)
                backoff = min(backoff * 2, 2.0)

    async def flush(self, timeout_s: float = 5.0) -> int:
        """Publish what is buffered; returns how many clicks could not be published."""
        try:
            async with asyncio.timeout(timeout_s):
                while self._items:
                    await self._send_batch()
        except (TimeoutError, KafkaError, OSError) as exc:
            log.error("click flush incomplete, %d left: %r", len(self._items), exc)
        return len(self._items)

    async def _send_batch(self) -> None:
        batch = [self._items[i] for i in range(min(self.batch_size, len(self._items)))]
        futures = [
            await self.producer.send(
                LinkClicked.TOPIC, value=env.data, key=key.encode(), headers=env.headers()
            )
            for key, env in batch
        ]
        await asyncio.gather(*futures)
        # Only now are they safe on the broker; the deque is only trimmed from this task.
        for _ in batch:
            self._items.popleft()
        CLICKS_PUBLISHED.inc(len(batch))
        CLICKS_BUFFERED.set(len(self._items))
