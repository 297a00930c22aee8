"""The consumer loop every service uses.

- Messages are read in batches and applied in one database transaction per batch, each
  message inside its own savepoint so that one failing handler does not undo the others.
- The inbox (``processed_events``) is written in that transaction: a redelivery is a no-op.
- Offsets are committed only after the transaction commits.
- A message that cannot be parsed, fails validation, or still fails after bounded retries is
  sent to ``<topic>.dlq`` with the error in headers; the loop moves on.
- A database or broker outage is not the message's fault: the batch is retried from its first
  offset with backoff and nothing goes to the DLQ.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pydantic
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from shared.aio import sleep_unless
from shared.contracts import BY_TYPE, dlq_topic
from shared.contracts.base import Event
from shared.messaging.envelope import Envelope, EnvelopeError
from shared.messaging.inbox import first_delivery
from shared.metrics import CONSUMER_LAG, DLQ_SENT, EVENTS_CONSUMED
from shared.telemetry import extract_context

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

# Handlers take the concrete contract model of their topic (validated before the call).
Handler = Callable[[asyncpg.Connection, Any, Envelope], Awaitable[None]]

# Errors that mean "the infrastructure is away or busy", never "this message is bad": the whole
# batch is rolled back and re-read. A deadlock or serialization failure belongs here too: two
# instances of a consumer briefly share messages during a rebalance, and whichever transaction
# Postgres aborts must be retried, not dead-lettered.
INFRA_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.TransactionRollbackError,
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    KafkaError,
)


class PoisonMessage(Exception):
    """The message can never be applied; it goes to the DLQ without retries."""


@dataclass
class FailedMessage:
    record: ConsumerRecord[bytes, bytes]
    error: BaseException


class EventConsumer:
    """Consumes ``handlers``' topics as consumer group ``name``."""

    def __init__(
        self,
        *,
        name: str,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        handlers: dict[str, Handler],
        bootstrap_servers: str,
        batch_size: int = 200,
        max_attempts: int = 3,
        retry_backoff_s: float = 0.2,
        fetch_max_wait_ms: int = 500,
        session_timeout_ms: int = 10_000,
    ) -> None:
        self.name = name
        self.pool = pool
        self.producer = producer
        self.handlers = handlers
        self.bootstrap_servers = bootstrap_servers
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.retry_backoff_s = retry_backoff_s
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.session_timeout_ms = session_timeout_ms
        self.running = False
        self._positions: dict[TopicPartition, int] = {}

    def _make_consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            *self.handlers,
            bootstrap_servers=self.bootstrap_servers,
            group_id=self.name,
            client_id=self.name,
            enable_auto_commit=False,
            # Re-reading is harmless (the inbox), skipping is not.
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            max_poll_records=self.batch_size,
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=max(100, self.session_timeout_ms // 3),
        )

    async def run(self, stop: asyncio.Event) -> None:
        backoff = self.retry_backoff_s
        while not stop.is_set():
            consumer = self._make_consumer()
            try:
                await consumer.start()
                self.running = True
                backoff = self.retry_backoff_s
                await self._loop(consumer, stop)
            except INFRA_ERRORS as exc:
                log.warning("consumer %s lost its broker, retrying: %r", self.name, exc)
                await sleep_unless(stop, backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                self.running = False
                with contextlib.suppress(Exception):
                    await consumer.stop()

    async def _loop(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        backoff = self.retry_backoff_s
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=self.batch_size)
            records = [r for part in batches.values() for r in part]
            if not records:
                self._record_lag(consumer)
                continue
            try:
                await self.process(records)
            except INFRA_ERRORS as exc:
                log.warning("consumer %s batch failed, will re-read it: %r", self.name, exc)
                for tp, part in batches.items():
                    consumer.seek(tp, part[0].offset)
                # Jitter, so that two instances that deadlocked do not retry in lockstep.
                await sleep_unless(stop, backoff * random.uniform(0.5, 1.5))
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = self.retry_backoff_s
            offsets = {tp: part[-1].offset + 1 for tp, part in batches.items()}
            await consumer.commit(offsets)
            self._positions.update(offsets)
            self._record_lag(consumer)

    async def process(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Apply a batch in one transaction, then dead-letter what could not be applied."""
        parsed: list[tuple[ConsumerRecord[bytes, bytes], Envelope, Event]] = []
        failed: list[FailedMessage] = []
        for record in records:
            try:
                env, event = self.parse(record)
            except PoisonMessage as exc:
                failed.append(FailedMessage(record, exc))
                continue
            parsed.append((record, env, event))

        if parsed:
            async with self.pool.acquire() as conn, conn.transaction():
                for record, env, event in parsed:
                    error = await self._apply_with_retries(conn, record, env, event)
                    if error is not None:
                        failed.append(FailedMessage(record, error))
        for f in failed:
            await self._dead_letter(f)

    def parse(self, record: ConsumerRecord[bytes, bytes]) -> tuple[Envelope, Event]:
        try:
            env = Envelope.from_kafka(record.headers, record.value)
        except EnvelopeError as exc:
            raise PoisonMessage(str(exc)) from exc
        model = BY_TYPE.get(env.type)
        if model is None or model.TOPIC != record.topic:
            raise PoisonMessage(f"unexpected ce_type {env.type!r} on topic {record.topic}")
        try:
            return env, model.model_validate_json(env.data)
        except pydantic.ValidationError as exc:
            raise PoisonMessage(f"invalid {env.type}: {exc}") from exc

    async def _apply_with_retries(
        self,
        conn: asyncpg.Connection,
        record: ConsumerRecord[bytes, bytes],
        env: Envelope,
        event: Event,
    ) -> BaseException | None:
        attributes: dict[str, Any] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": record.topic,
            "messaging.consumer.group.name": self.name,
            "messaging.message.id": env.id,
            "messaging.kafka.message.key": (record.key or b"").decode(errors="replace"),
            "messaging.destination.partition.id": str(record.partition),
            "messaging.kafka.offset": record.offset,
        }
        with tracer.start_as_current_span(
            f"{record.topic} process",
            context=extract_context(env.trace),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        ) as span:
            for attempt in range(1, self.max_attempts + 1):
                try:
                    async with conn.transaction():  # a savepoint inside the batch transaction
                        if not await first_delivery(conn, self.name, env.id, record.topic):
                            EVENTS_CONSUMED.labels(self.name, record.topic, "duplicate").inc()
                            span.set_attribute("messaging.duplicate", True)
                            return None
                        await self.handlers[record.topic](conn, event, env)
                    EVENTS_CONSUMED.labels(self.name, record.topic, "applied").inc()
                    return None
                except INFRA_ERRORS:
                    raise
                except Exception as exc:
                    span.record_exception(exc)
                    if isinstance(exc, PoisonMessage) or attempt == self.max_attempts:
                        span.set_status(Status(StatusCode.ERROR, str(exc)))
                        log.error(
                            "consumer %s gives up on %s event %s: %r",
                            self.name,
                            record.topic,
                            env.id,
                            exc,
                        )
                        return exc
                    await asyncio.sleep(self.retry_backoff_s * 2 ** (attempt - 1))
        return None

    async def _dead_letter(self, failed: FailedMessage) -> None:
        record, error = failed.record, failed.error
        headers = list(record.headers or ())
        headers += [
            ("dlq_error", str(error)[:2000].encode()),
            ("dlq_error_type", type(error).__name__.encode()),
            ("dlq_traceback", "".join(traceback.format_exception(error))[-4000:].encode()),
            ("dlq_consumer", self.name.encode()),
            ("dlq_original_topic", record.topic.encode()),
            ("dlq_original_partition", str(record.partition).encode()),
            ("dlq_original_offset", str(record.offset).encode()),
            ("dlq_failed_at", datetime.now(UTC).isoformat().encode()),
        ]
        await self.producer.send_and_wait(
            dlq_topic(record.topic), value=record.value, key=record.key, headers=headers
        )
        DLQ_SENT.labels(self.name, record.topic).inc()
        EVENTS_CONSUMED.labels(self.name, record.topic, "dead_lettered").inc()

    def _record_lag(self, consumer: AIOKafkaConsumer) -> None:
        for tp, position in self._positions.items():
            high = consumer.highwater(tp)
            if high is not None:
                CONSUMER_LAG.labels(self.name, tp.topic, str(tp.partition)).set(
                    max(0, high - position)
                )
