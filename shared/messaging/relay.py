"""Outbox relay: reads unsent rows oldest first, publishes them with ``acks=all`` and then
marks them sent. Woken by ``LISTEN/NOTIFY`` with a slow poll as fallback. A session advisory
lock keeps one active relay per database, which keeps per-key order; other replicas stand by
and take over when it goes away.

No transaction is held while the broker is waited for: the leader lock already keeps other
relays off the rows, and a transaction open across a send (seconds during a broker outage)
would hold back vacuum and every reader that waits for the transactions in flight (the
rewards statement). A relay that dies between the send and the mark sends the batch again,
which the consumers' inboxes absorb, as with any at-least-once delivery."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import SpanKind

from shared.aio import sleep_unless
from shared.db import connect
from shared.metrics import OUTBOX_BACKLOG, OUTBOX_OLDEST_AGE, OUTBOX_SENT
from shared.telemetry import extract_context, inject_context

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

_LEADER_LOCK = 0x5EF_0002
_UNSENT = """
SELECT id, event_id, topic, key, headers, payload
FROM outbox WHERE sent_at IS NULL
ORDER BY id LIMIT $1
"""
_TRACE_HEADERS = ("traceparent", "tracestate")


class OutboxRelay:
    def __init__(
        self,
        *,
        dsn: str,
        producer: AIOKafkaProducer,
        batch_size: int = 500,
        poll_interval_s: float = 1.0,
        retention_hours: float = 168.0,
    ) -> None:
        self.dsn = dsn
        self.producer = producer
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.retention_hours = retention_hours
        self.is_leader = False
        self._wake = asyncio.Event()
        self._last_housekeeping = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 0.2
        while not stop.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await connect(self.dsn)
                await self._lead(conn, stop)
                backoff = 0.2
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, KafkaError) as exc:
                log.warning("outbox relay error, retrying in %.1fs: %r", backoff, exc)
                await sleep_unless(stop, backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                self.is_leader = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()

    async def _lead(self, conn: asyncpg.Connection, stop: asyncio.Event) -> None:
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LEADER_LOCK):
            if await sleep_unless(stop, self.poll_interval_s):
                return
        self.is_leader = True
        await conn.add_listener("outbox", lambda *_: self._wake.set())
        while not stop.is_set():
            self._wake.clear()
            # The relay's own queries would otherwise open a root span every poll.
            with suppress_instrumentation():
                sent = await self.relay_once(conn)
                if sent < self.batch_size:
                    await self._housekeeping(conn)
            if sent < self.batch_size:
                waiter = asyncio.create_task(self._wake.wait())
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait(
                    {waiter, stopper},
                    timeout=self.poll_interval_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                waiter.cancel()
                stopper.cancel()

    async def relay_once(self, conn: asyncpg.Connection) -> int:
        """Publish one batch; returns how many rows were sent."""
        rows = await conn.fetch(_UNSENT, self.batch_size)
        if not rows:
            return 0
        spans = []
        futures = []
        try:
            for row in rows:
                stored: dict[str, str] = row["headers"]
                parent = extract_context({k: stored[k] for k in _TRACE_HEADERS if k in stored})
                span = tracer.start_span(
                    f"{row['topic']} publish",
                    context=parent,
                    kind=SpanKind.PRODUCER,
                    attributes={
                        "messaging.system": "kafka",
                        "messaging.operation.type": "send",
                        "messaging.destination.name": row["topic"],
                        "messaging.message.id": str(row["event_id"]),
                        "messaging.kafka.message.key": row["key"] or "",
                    },
                )
                spans.append(span)
                # The message carries the publish span as its parent, continuing the trace.
                headers = {k: v for k, v in stored.items() if k not in _TRACE_HEADERS}
                headers.update(inject_context(trace.set_span_in_context(span)))
                futures.append(
                    await self.producer.send(
                        row["topic"],
                        value=bytes(row["payload"]),
                        key=row["key"].encode() if row["key"] is not None else None,
                        headers=[(k, v.encode()) for k, v in headers.items()],
                    )
                )
            await asyncio.gather(*futures)
        finally:
            for span in spans:
                span.end()
        await conn.execute(
            "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])",
            [r["id"] for r in rows],
        )
        for row in rows:
            OUTBOX_SENT.labels(row["topic"]).inc()
        return len(rows)

    async def _housekeeping(self, conn: asyncpg.Connection) -> None:
        now = time.monotonic()
        if now - self._last_housekeeping < self.poll_interval_s:
            return
        self._last_housekeeping = now
        row = await conn.fetchrow(
            "SELECT count(*) AS n, extract(epoch FROM now() - min(created_at)) AS age "
            "FROM outbox WHERE sent_at IS NULL"
        )
        OUTBOX_BACKLOG.set(row["n"])
        OUTBOX_OLDEST_AGE.set(float(row["age"] or 0))
        # Sent rows are kept for a while so that an operator can replay them.
        await conn.execute(
            "DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => $1)",
            self.retention_hours * 3600,
        )
