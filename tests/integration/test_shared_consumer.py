"""The consumer loop: inbox de-duplication, DLQ, retries, offsets — real broker, real Postgres."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.contracts import ApiKeyIssued, dlq_topic
from shared.db import create_pool
from shared.messaging.consumer import EventConsumer
from shared.messaging.envelope import Envelope
from shared.messaging.outbox import envelope_for
from shared.messaging.producer import ensure_topics
from shared.metrics import CONSUMER_RESTARTS
from shared.service import start_producer
from shared.settings import ServiceSettings
from tests.factories import api_key_issued
from tests.integration.kafka_helpers import count, migrated, read_topic, running, wait_for

TOPIC = ApiKeyIssued.TOPIC


async def _setup(settings: ServiceSettings) -> tuple[asyncpg.Pool, AIOKafkaProducer]:
    await migrated(settings.database_url)
    await ensure_topics(settings, [TOPIC, dlq_topic(TOPIC)])
    pool = await create_pool(settings.database_url)
    await pool.execute("CREATE TABLE effects (key_id text NOT NULL)")
    return pool, await start_producer(settings)


async def _apply(conn: asyncpg.Connection, event: ApiKeyIssued, _: Envelope) -> None:
    await conn.execute("INSERT INTO effects (key_id) VALUES ($1)", event.key_id)


def _consumer(
    settings: ServiceSettings,
    pool: asyncpg.Pool,
    producer: AIOKafkaProducer,
    handler: Any = _apply,
    name: str = "test",
    **options: Any,
) -> EventConsumer:
    return EventConsumer(
        name=name,
        pool=pool,
        producer=producer,
        handlers={TOPIC: handler},
        bootstrap_servers=settings.kafka_bootstrap_servers,
        batch_size=50,
        max_attempts=3,
        retry_backoff_s=0.01,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        **options,
    )


async def _send(producer: AIOKafkaProducer, env: Envelope, key: bytes = b"k") -> None:
    await producer.send_and_wait(TOPIC, value=env.data, key=key, headers=env.headers())


async def test_a_duplicate_delivery_is_applied_once(settings: ServiceSettings) -> None:
    pool, producer = await _setup(settings)
    try:
        events = [api_key_issued() for _ in range(3)]
        envs = [envelope_for(e, "/test") for e in events]
        for env in envs + envs[:2]:  # the first two delivered twice
            await _send(producer, env)
        consumer = _consumer(settings, pool, producer)
        async with running(consumer.run):
            await wait_for(lambda: _processed(pool, 3))
            await _send(producer, envs[0])  # and once more after it was committed
            marker = envelope_for(api_key_issued(), "/test")
            await _send(producer, marker)
            await wait_for(lambda: _processed(pool, 4))
        rows = await pool.fetch("SELECT key_id FROM effects")
        assert sorted(r["key_id"] for r in rows) == sorted(
            [e.key_id for e in events] + [ApiKeyIssued.model_validate_json(marker.data).key_id]
        )
    finally:
        await producer.stop()
        await pool.close()


async def _processed(pool: asyncpg.Pool, n: int) -> bool:
    return await count(pool, "SELECT count(*) FROM processed_events") >= n


async def test_a_poison_message_goes_to_the_dlq_and_the_next_one_is_processed(
    settings: ServiceSettings,
) -> None:
    pool, producer = await _setup(settings)
    try:
        good = envelope_for(api_key_issued(), "/test")
        bad_json = Envelope(type=ApiKeyIssued.TYPE, source="/test", data=b"{not json")
        wrong_type = Envelope(type="something.else.v1", source="/test", data=b"{}")
        await _send(producer, bad_json)
        await producer.send_and_wait(TOPIC, value=b"no headers at all", key=b"k")
        await _send(producer, wrong_type)
        await _send(producer, good)

        consumer = _consumer(settings, pool, producer)
        async with running(consumer.run):
            await wait_for(lambda: _processed(pool, 1))
        assert await count(pool, "SELECT count(*) FROM effects") == 1

        dead = await read_topic(settings, dlq_topic(TOPIC), expect=3)
        assert len(dead) == 3
        assert [r.value for r in dead] == [b"{not json", b"no headers at all", b"{}"]
        for record in dead:
            headers = dict(record.headers)
            assert headers["dlq_consumer"] == b"test"
            assert headers["dlq_original_topic"] == TOPIC.encode()
            assert headers["dlq_error_type"] == b"PoisonMessage"
            assert headers["dlq_error"]
        assert b"missing CloudEvents headers" in dict(dead[1].headers)["dlq_error"]
    finally:
        await producer.stop()
        await pool.close()


async def test_a_handler_that_keeps_failing_is_dead_lettered_after_retries(
    settings: ServiceSettings,
) -> None:
    pool, producer = await _setup(settings)
    attempts: dict[str, int] = {}
    try:
        bad, good = api_key_issued(), api_key_issued()

        async def handler(conn: asyncpg.Connection, event: ApiKeyIssued, env: Envelope) -> None:
            await _apply(conn, event, env)  # its effect must be rolled back with the failure
            if event.key_id == bad.key_id:
                attempts[event.key_id] = attempts.get(event.key_id, 0) + 1
                raise ValueError("rule engine exploded")

        await _send(producer, envelope_for(bad, "/test"))
        await _send(producer, envelope_for(good, "/test"))
        consumer = _consumer(settings, pool, producer, handler)
        async with running(consumer.run):
            await wait_for(lambda: _processed(pool, 1))
        assert attempts[bad.key_id] == 3
        rows = await pool.fetch("SELECT key_id FROM effects")
        assert [r["key_id"] for r in rows] == [good.key_id]
        [dead] = await read_topic(settings, dlq_topic(TOPIC), expect=1)
        assert dict(dead.headers)["dlq_error"] == b"rule engine exploded"
        assert dict(dead.headers)["dlq_error_type"] == b"ValueError"
    finally:
        await producer.stop()
        await pool.close()


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.CannotConnectNowError("the database is starting up"),
        asyncpg.DeadlockDetectedError("deadlock detected"),
    ],
    ids=["database-starting", "deadlock"],
)
async def test_an_infrastructure_error_retries_the_batch_and_dead_letters_nothing(
    settings: ServiceSettings, error: Exception
) -> None:
    pool, producer = await _setup(settings)
    failures = {"left": 2}
    try:

        async def handler(conn: asyncpg.Connection, event: ApiKeyIssued, env: Envelope) -> None:
            if failures["left"] > 0:
                failures["left"] -= 1
                raise error
            await _apply(conn, event, env)

        events = [api_key_issued() for _ in range(5)]
        for event in events:
            await _send(producer, envelope_for(event, "/test"))
        consumer = _consumer(settings, pool, producer, handler)
        async with running(consumer.run):
            await wait_for(lambda: _processed(pool, 5))
        assert failures["left"] == 0
        assert await count(pool, "SELECT count(*) FROM effects") == 5
        assert await read_topic(settings, dlq_topic(TOPIC), expect=1, timeout_s=2) == []
    finally:
        await producer.stop()
        await pool.close()


def _restarts(consumer: str, reason: str) -> float:
    return CONSUMER_RESTARTS.labels(consumer, reason)._value.get()


@pytest.mark.parametrize("failure", ["stalled", "cancelled"])
async def test_a_consumer_that_hangs_or_loses_its_task_is_replaced(
    settings: ServiceSettings, failure: str
) -> None:
    """The Kafka client can wait for ever on a coordinator or leader it will not find again,
    or let an internal cancellation escape: either way the supervisor logs it, builds a new
    consumer, and the batch is read again and applied once."""
    pool, producer = await _setup(settings)
    first = {"call": True}
    try:

        async def handler(conn: asyncpg.Connection, event: ApiKeyIssued, env: Envelope) -> None:
            if first["call"]:
                first["call"] = False
                if failure == "stalled":
                    await asyncio.Event().wait()  # never set
                raise asyncio.CancelledError  # as if from inside the client
            await _apply(conn, event, env)

        events = [api_key_issued() for _ in range(5)]
        for event in events:
            await _send(producer, envelope_for(event, "/test"))
        name = f"test-{failure}-{uuid.uuid4().hex[:6]}"
        consumer = _consumer(settings, pool, producer, handler, name=name, stall_timeout_s=1.0)
        async with running(consumer.run):
            await wait_for(lambda: _processed(pool, 5), timeout_s=30)
        assert not first["call"]
        assert _restarts(name, failure) == 1
        assert await count(pool, "SELECT count(*) FROM effects") == 5
        assert await read_topic(settings, dlq_topic(TOPIC), expect=1, timeout_s=2) == []
    finally:
        await producer.stop()
        await pool.close()


async def test_offsets_are_committed_so_a_restart_does_not_reapply(
    settings: ServiceSettings,
) -> None:
    pool, producer = await _setup(settings)
    try:
        for _ in range(10):
            await _send(producer, envelope_for(api_key_issued(), "/test"), key=uuid.uuid4().bytes)
        async with running(_consumer(settings, pool, producer).run):
            await wait_for(lambda: _processed(pool, 10))
        # Forget the inbox: if offsets were not committed, a restart would apply all again.
        await pool.execute("DELETE FROM processed_events")
        marker = envelope_for(api_key_issued(), "/test")
        await _send(producer, marker)
        async with running(_consumer(settings, pool, producer).run):
            await wait_for(lambda: _processed(pool, 1))
        assert await count(pool, "SELECT count(*) FROM effects") == 11
        assert await pool.fetchval("SELECT event_id::text FROM processed_events") == marker.id
    finally:
        await producer.stop()
        await pool.close()


async def test_two_consumer_instances_apply_each_event_once(settings: ServiceSettings) -> None:
    pool, producer = await _setup(settings)
    try:
        envs = [envelope_for(api_key_issued(), "/test") for _ in range(60)]
        for env in envs:
            await _send(producer, env, key=uuid.uuid4().bytes)
        for env in envs[:20]:  # redeliveries, as after a rebalance
            await _send(producer, env, key=uuid.uuid4().bytes)
        one, two = _consumer(settings, pool, producer), _consumer(settings, pool, producer)
        async with running(one.run), running(two.run):
            await wait_for(lambda: _processed(pool, 60), timeout_s=30)
        assert await count(pool, "SELECT count(*) FROM effects") == 60
        assert await count(pool, "SELECT count(DISTINCT key_id) FROM effects") == 60
    finally:
        await producer.stop()
        await pool.close()


async def test_the_process_span_is_a_child_of_the_message_context(
    settings: ServiceSettings, span_exporter: InMemorySpanExporter
) -> None:
    pool, producer = await _setup(settings)
    try:
        parent_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        env = Envelope(
            type=ApiKeyIssued.TYPE,
            source="/test",
            data=api_key_issued().model_dump_json().encode(),
            trace={"traceparent": f"00-{parent_trace}-00f067aa0ba902b7-01"},
        )
        await _send(producer, env)
        async with running(_consumer(settings, pool, producer).run):
            await wait_for(lambda: _processed(pool, 1))
        spans = [
            s
            for s in span_exporter.get_finished_spans()
            if s.name == f"{TOPIC} process" and s.attributes.get("messaging.message.id") == env.id
        ]
        assert len(spans) == 1
        assert format(spans[0].context.trace_id, "032x") == parent_trace
        assert spans[0].parent is not None and spans[0].parent.span_id == 0x00F067AA0BA902B7
        assert spans[0].attributes["messaging.consumer.group.name"] == "test"
    finally:
        await producer.stop()
        await pool.close()


async def test_partitions_are_applied_concurrently_and_each_key_stays_in_order(
    settings: ServiceSettings,
) -> None:
    pool, producer = await _setup(settings)
    await pool.execute("CREATE TABLE seen (n bigserial, key text, key_id text)")
    try:
        keys = [f"referrer-{i}".encode() for i in range(12)]  # spread over the partitions
        sent: dict[bytes, list[str]] = {k: [] for k in keys}
        for _ in range(8):
            for key in keys:
                event = api_key_issued()
                sent[key].append(event.key_id)
                await _send(producer, envelope_for(event, "/test"), key=key)
        spread = await read_topic(settings, TOPIC, expect=8 * len(keys))
        assert len({r.partition for r in spread}) > 1

        async def record(conn: asyncpg.Connection, event: ApiKeyIssued, env: Envelope) -> None:
            key = next(k for k, ids in sent.items() if event.key_id in ids)
            await conn.execute(
                "INSERT INTO seen (key, key_id) VALUES ($1, $2)", key.decode(), event.key_id
            )
            await asyncio.sleep(0.001)  # let the groups interleave

        consumer = _consumer(settings, pool, producer, record)
        assert consumer.partition_concurrency > 1
        async with running(consumer.run):
            await wait_for(lambda: _processed(pool, 8 * len(keys)))
        for key, ids in sent.items():
            rows = await pool.fetch(
                "SELECT key_id FROM seen WHERE key = $1 ORDER BY n", key.decode()
            )
            assert [r["key_id"] for r in rows] == ids
    finally:
        await producer.stop()
        await pool.close()
