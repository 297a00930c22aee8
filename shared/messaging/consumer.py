"""The consumer loop every service uses.

- Messages are read in batches and applied in one database transaction per batch, each
  message inside its own savepoint so that one failing handler does not undo the others.
- The inbox (``processed_events``) is written in that transaction: a redelivery is a no-op.
- Offsets are committed only after the transaction commits.
- A message that cannot be parsed, fails validation, or still fails after bounded retries is
  sent to ``<topic>.dlq`` with the error in headers (``dlq.send_to_dlq``); the loop moves on.
- A database or broker outage is not the message's fault: the batch is retried from its first
  offset with backoff and nothing goes to the DLQ.
- The loop is supervised: an unexpected error, a cancellation that leaks out of the Kafka
  client, or a loop that has not turned for ``stall_timeout_s`` is logged, counted
  (``consumer_restarts_total``) and answered with a new Kafka consumer, so a process never
  keeps serving while its consumer is gone (the group would wait for it for ever).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pydantic
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from shared.aio import sleep_unless
from shared.contracts import BY_TYPE
from shared.contracts.base import Event
from shared.messaging import outbox
from shared.messaging.dlq import FailedMessage, send_to_dlq
from shared.messaging.envelope import Envelope, EnvelopeError
from shared.messaging.inbox import first_deliveries, first_delivery
from shared.metrics import CONSUMER_LAG, CONSUMER_RESTARTS, EVENTS_CONSUMED
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


class ConsumerStalled(Exception):
    """The consumer loop has not turned for longer than its stall timeout."""


class _HandlerFailed(Exception):
    """A handler failed while a batch was applied all at once (``index`` in the batch)."""

    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(repr(error))
        self.index = index
        self.error = error


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
        partition_concurrency: int = 3,
        stall_timeout_s: float = 120.0,
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
        self.partition_concurrency = max(1, partition_concurrency)
        self.stall_timeout_s = stall_timeout_s
        self._turned_at = time.monotonic()
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
            # aiokafka 0.14 retries a failed offset reset (ListOffsets answered "not leader")
            # on the same broker without new metadata, so after a leader change a partition
            # with no committed offset waits for the periodic refresh (5 min by default).
            # bench/chaos_offset_reset_repro.py shows it; 30 s bounds that stall.
            metadata_max_age_ms=30_000,
        )

    async def run(self, stop: asyncio.Event) -> None:
        backoff = self.retry_backoff_s
        while not stop.is_set():
            consumer = self._make_consumer()
            try:
                await consumer.start()
                backoff = self.retry_backoff_s
                await self._supervised(consumer, stop)
            except INFRA_ERRORS as exc:
                log.warning("consumer %s lost its broker, retrying: %r", self.name, exc)
                self._restarted("broker")
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # the service is stopping
                # aiokafka can let an internal task's cancellation escape (seen after a group
                # coordinator moved): the consumer is unusable, the process is not.
                log.error("consumer %s: a cancellation escaped the Kafka client", self.name)
                self._restarted("cancelled")
            except ConsumerStalled as exc:
                log.error("consumer %s: %s; starting a new Kafka consumer", self.name, exc)
                self._restarted("stalled")
            except Exception:
                log.exception("consumer %s failed; starting a new Kafka consumer", self.name)
                self._restarted("error")
            finally:
                await stop_quietly(consumer)
            await sleep_unless(stop, backoff)
            backoff = min(backoff * 2, 5.0)

    def _restarted(self, reason: str) -> None:
        CONSUMER_RESTARTS.labels(self.name, reason).inc()

    async def _supervised(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        """Run the loop in a task of its own and end it if it stops turning (a poll, its
        batch and its commit): a Kafka client that waits for ever on a coordinator or a
        leader it will not find again. Offsets not yet committed are read again."""
        self._turned_at = time.monotonic()
        loop = asyncio.create_task(self._loop(consumer, stop), name=f"{self.name}-loop")
        check_every = max(0.05, min(5.0, self.stall_timeout_s / 4))
        try:
            while True:
                done, _ = await asyncio.wait({loop}, timeout=check_every)
                if done:
                    return loop.result()
                idle = time.monotonic() - self._turned_at
                if idle > self.stall_timeout_s:
                    raise ConsumerStalled(f"the loop has not turned for {idle:.0f}s")
        finally:
            if not loop.done():
                loop.cancel()
                await asyncio.wait({loop})

    async def _loop(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        backoff = self.retry_backoff_s
        while not stop.is_set():
            self._turned_at = time.monotonic()
            batches = await consumer.getmany(timeout_ms=500, max_records=self.batch_size)
            if not any(batches.values()):
                self._record_lag(consumer)
                continue
            groups = self._groups(batches)
            results = await asyncio.gather(
                *(self.process([r for part in g.values() for r in part]) for g in groups),
                return_exceptions=True,
            )
            offsets: dict[TopicPartition, int] = {}
            failed = False
            for group, result in zip(groups, results, strict=True):
                if isinstance(result, INFRA_ERRORS):
                    log.warning("consumer %s batch failed, will re-read it: %r", self.name, result)
                    for tp, part in group.items():
                        consumer.seek(tp, part[0].offset)
                    failed = True
                elif isinstance(result, BaseException):
                    raise result
                else:
                    offsets.update({tp: part[-1].offset + 1 for tp, part in group.items()})
            if offsets:
                try:
                    await consumer.commit(offsets)
                except CommitFailedError as exc:
                    # The group rebalanced under us: aiokafka rejoins by itself and whoever
                    # owns these partitions now re-reads them (the inbox drops what was
                    # applied). Rebuilding the consumer instead would leave a dead member
                    # in the group that stalls it until its session times out.
                    log.warning("consumer %s: offsets not committed: %r", self.name, exc)
                    continue
                self._positions.update(offsets)
            self._record_lag(consumer)
            if failed:
                # Jitter, so that two instances that deadlocked do not retry in lockstep.
                await sleep_unless(stop, backoff * random.uniform(0.5, 1.5))
                backoff = min(backoff * 2, 5.0)
            else:
                backoff = self.retry_backoff_s

    def _groups(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> list[dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]]:
        """Split a fetch into up to ``partition_concurrency`` groups, applied concurrently,
        each in its own transaction. By partition number: events with one key are in one
        partition of each topic (same partition count and partitioner), so one referrer's
        events stay in one group, in their order. Waiting on the database is most of a
        consumer's time: this overlaps those waits."""
        groups: dict[int, dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]] = {}
        for tp, part in batches.items():
            if part:
                groups.setdefault(tp.partition % self.partition_concurrency, {})[tp] = part
        return list(groups.values())

    async def process(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Apply a batch in one transaction, then dead-letter what could not be applied.

        First all at once: one inbox statement for the batch and no savepoints (each costs
        two round trips per message). If a handler fails, that transaction is rolled back
        and the batch is applied again one message at a time, each in its own savepoint with
        bounded retries, so that only the bad message is dead-lettered."""
        parsed, failed = self._parse_all(records)
        if parsed:
            try:
                await self._apply_all_at_once(parsed)
            except _HandlerFailed as exc:
                log.info(
                    "consumer %s: a handler failed (%r); applying the batch message by message",
                    self.name,
                    exc.error,
                )
                # That failure was the message's first attempt.
                await asyncio.sleep(self.retry_backoff_s)
                failed += await self._apply_one_by_one(parsed, tried={exc.index: exc.error})
        for f in failed:
            await self._dead_letter(f)

    async def process_one_by_one(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """``process`` without the all-at-once attempt (for callers that made their own)."""
        parsed, failed = self._parse_all(records)
        if parsed:
            failed += await self._apply_one_by_one(parsed)
        for f in failed:
            await self._dead_letter(f)

    def _parse_all(
        self, records: list[ConsumerRecord[bytes, bytes]]
    ) -> tuple[list[tuple[ConsumerRecord[bytes, bytes], Envelope, Event]], list[FailedMessage]]:
        parsed: list[tuple[ConsumerRecord[bytes, bytes], Envelope, Event]] = []
        failed: list[FailedMessage] = []
        for record in records:
            try:
                env, event = self.parse(record)
            except PoisonMessage as exc:
                failed.append(FailedMessage(record, exc))
                continue
            parsed.append((record, env, event))
        return parsed, failed

    async def _apply_all_at_once(
        self, parsed: list[tuple[ConsumerRecord[bytes, bytes], Envelope, Event]]
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            ids = [str(uuid.UUID(env.id)) for _, env, _ in parsed]
            fresh = await first_deliveries(
                conn,
                self.name,
                [(i, record.topic) for i, (record, _, _) in zip(ids, parsed, strict=True)],
            )
            outcomes = []
            async with outbox.batched(conn):
                await self._apply_in_order(conn, ids, parsed, fresh, outcomes)
        for topic, outcome in outcomes:
            EVENTS_CONSUMED.labels(self.name, topic, outcome).inc()

    async def _apply_in_order(
        self,
        conn: asyncpg.Connection,
        ids: list[str],
        parsed: list[tuple[ConsumerRecord[bytes, bytes], Envelope, Event]],
        fresh: set[str],
        outcomes: list[tuple[str, str]],
    ) -> None:
        for event_id, (record, env, event) in zip(ids, parsed, strict=True):
            with self._span(record, env) as span:
                if event_id not in fresh:
                    outcomes.append((record.topic, "duplicate"))
                    span.set_attribute("messaging.duplicate", True)
                    continue
                fresh.discard(event_id)  # the same event twice in one batch: apply it once
                try:
                    await self.handlers[record.topic](conn, event, env)
                except INFRA_ERRORS:
                    raise
                except Exception as exc:
                    span.record_exception(exc)
                    raise _HandlerFailed(len(outcomes), exc) from exc
                outcomes.append((record.topic, "applied"))

    async def _apply_one_by_one(
        self,
        parsed: list[tuple[ConsumerRecord[bytes, bytes], Envelope, Event]],
        tried: dict[int, BaseException] | None = None,
    ) -> list[FailedMessage]:
        """``tried``: messages (by index) whose handler failed once already, with the error."""
        tried = tried or {}
        failed: list[FailedMessage] = []
        async with self.pool.acquire() as conn, conn.transaction():
            for index, (record, env, event) in enumerate(parsed):
                earlier = tried.get(index)
                if earlier is not None and (
                    isinstance(earlier, PoisonMessage) or self.max_attempts <= 1
                ):
                    self._log_give_up(record, env, earlier)
                    failed.append(FailedMessage(record, earlier))
                    continue
                error = await self._apply_with_retries(
                    conn, record, env, event, first_attempt=2 if earlier is not None else 1
                )
                if error is not None:
                    failed.append(FailedMessage(record, error))
        return failed

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
        first_attempt: int = 1,
    ) -> BaseException | None:
        with self._span(record, env) as span:
            for attempt in range(first_attempt, self.max_attempts + 1):
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
                        self._log_give_up(record, env, exc)
                        return exc
                    await asyncio.sleep(self.retry_backoff_s * 2 ** (attempt - 1))
        return None

    def _log_give_up(
        self, record: ConsumerRecord[bytes, bytes], env: Envelope, error: BaseException
    ) -> None:
        log.error("consumer %s gives up on %s event %s: %r", self.name, record.topic, env.id, error)

    def _span(self, record: ConsumerRecord[bytes, bytes], env: Envelope) -> Any:
        """The ``<topic> process`` span of one message, a child of the context it carries."""
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
        return tracer.start_as_current_span(
            f"{record.topic} process",
            context=extract_context(env.trace),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        )

    async def _dead_letter(self, failed: FailedMessage) -> None:
        await send_to_dlq(self.producer, self.name, failed)

    def _record_lag(self, consumer: AIOKafkaConsumer) -> None:
        # Only partitions this member still owns: after a rebalance aiokafka asserts on the
        # high-water mark of one it lost (that assertion once ended the consumer silently).
        assigned = consumer.assignment()
        for tp in [tp for tp in self._positions if tp not in assigned]:
            del self._positions[tp]
        for tp, position in self._positions.items():
            high = consumer.highwater(tp)
            if high is not None:
                CONSUMER_LAG.labels(self.name, tp.topic, str(tp.partition)).set(
                    max(0, high - position)
                )


async def stop_quietly(consumer: AIOKafkaConsumer) -> None:
    """Stop a consumer whose broker may be gone. aiokafka's fetcher can let a CancelledError
    escape from ``stop()`` then; that one is swallowed unless this task itself is being
    cancelled."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
    except Exception as exc:
        log.debug("consumer stop failed: %r", exc)
