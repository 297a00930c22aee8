"""Outbox and relay against the real broker and Postgres."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.contracts import ApiKeyIssued
from shared.db import create_pool
from shared.messaging.envelope import Envelope
from shared.messaging.outbox import batched, enqueue
from shared.messaging.producer import ensure_topics
from shared.messaging.relay import OutboxRelay
from shared.service import start_producer
from shared.settings import ServiceSettings
from tests.factories import api_key_issued
from tests.integration.kafka_helpers import count, migrated, read_topic, running, wait_for


async def _setup(settings: ServiceSettings) -> Any:
    await migrated(settings.database_url)
    await ensure_topics(settings, [ApiKeyIssued.TOPIC])
    return await create_pool(settings.database_url), await start_producer(settings)


async def test_committed_events_are_published_in_order_and_rolled_back_ones_never(
    settings: ServiceSettings,
) -> None:
    pool, producer = await _setup(settings)
    program = uuid.uuid4()  # one key: one partition, so order is observable
    try:
        sent_ids = []
        for _ in range(20):
            async with pool.acquire() as conn, conn.transaction():
                sent_ids.append(await enqueue(conn, api_key_issued(program), source="/test"))
        with pytest.raises(RuntimeError):
            async with pool.acquire() as conn, conn.transaction():
                await enqueue(conn, api_key_issued(program), source="/test")
                raise RuntimeError("business change failed")

        relay = OutboxRelay(
            dsn=settings.database_url, producer=producer, batch_size=7, poll_interval_s=0.2
        )
        async with running(relay.run):
            await wait_for(lambda: _unsent_is_zero(pool))
        records = await read_topic(settings, ApiKeyIssued.TOPIC, expect=20)
        ids = [Envelope.from_kafka(r.headers, r.value).id for r in records]
        assert ids == sent_ids
        assert await count(pool, "SELECT count(*) FROM outbox") == 20
    finally:
        await producer.stop()
        await pool.close()


async def _unsent_is_zero(pool: Any) -> bool:
    return await count(pool, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0


class FlakyProducer:
    """Passes ``ok`` sends to the real producer, then fails like a broker that went away."""

    def __init__(self, real: Any, ok: int) -> None:
        self.real, self.ok = real, ok

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        if self.ok <= 0:
            raise KafkaConnectionError("broker went away mid-batch")
        self.ok -= 1
        return await self.real.send(*args, **kwargs)


async def test_relay_stopped_mid_batch_and_restarted_loses_nothing(
    settings: ServiceSettings,
) -> None:
    pool, producer = await _setup(settings)
    try:
        expected = []
        async with pool.acquire() as conn, conn.transaction():
            for _ in range(50):
                expected.append(await enqueue(conn, api_key_issued(), source="/test"))

        broken = OutboxRelay(
            dsn=settings.database_url, producer=FlakyProducer(producer, 30), batch_size=50
        )
        async with pool.acquire() as conn:
            with pytest.raises(KafkaConnectionError):
                await broken.relay_once(conn)
        # A batch is marked sent only once all of it was sent: none is, though 30 went out.
        assert await count(pool, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 50

        relay = OutboxRelay(dsn=settings.database_url, producer=producer, poll_interval_s=0.2)
        async with running(relay.run):
            await wait_for(lambda: _unsent_is_zero(pool))
        records = await read_topic(settings, ApiKeyIssued.TOPIC, expect=80)
        ids = [Envelope.from_kafka(r.headers, r.value).id for r in records]
        assert set(ids) == set(expected)  # every event arrived...
        assert len(ids) == 80  # ...the 30 sent before the failure twice (consumers dedupe)
    finally:
        await producer.stop()
        await pool.close()


async def test_relay_cancelled_mid_send_loses_nothing(settings: ServiceSettings) -> None:
    pool, producer = await _setup(settings)
    try:
        async with pool.acquire() as conn, conn.transaction():
            expected = [await enqueue(conn, api_key_issued(), source="/test") for _ in range(200)]

        class SlowProducer:
            async def send(self, *args: Any, **kwargs: Any) -> Any:
                await asyncio.sleep(0.01)
                return await producer.send(*args, **kwargs)

        relay = OutboxRelay(dsn=settings.database_url, producer=SlowProducer(), batch_size=200)
        task = asyncio.create_task(relay.run(asyncio.Event()))
        await asyncio.sleep(0.5)  # somewhere inside the batch
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        unsent = await count(pool, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        assert unsent == 200

        relay = OutboxRelay(dsn=settings.database_url, producer=producer, poll_interval_s=0.2)
        async with running(relay.run):
            await wait_for(lambda: _unsent_is_zero(pool))
        records = await read_topic(
            settings, ApiKeyIssued.TOPIC, expect=len(expected) + 1, timeout_s=3
        )
        assert {Envelope.from_kafka(r.headers, r.value).id for r in records} == set(expected)
    finally:
        await producer.stop()
        await pool.close()


async def test_one_relay_leads_and_a_standby_takes_over(settings: ServiceSettings) -> None:
    pool, producer = await _setup(settings)
    try:
        first = OutboxRelay(dsn=settings.database_url, producer=producer, poll_interval_s=0.1)
        second = OutboxRelay(dsn=settings.database_url, producer=producer, poll_interval_s=0.1)
        stop_first, stop_second = asyncio.Event(), asyncio.Event()
        first_task = asyncio.create_task(first.run(stop_first))
        await wait_for(lambda: _true(first.is_leader))
        second_task = asyncio.create_task(second.run(stop_second))
        await asyncio.sleep(0.5)
        assert first.is_leader and not second.is_leader

        stop_first.set()
        await first_task
        await wait_for(lambda: _true(second.is_leader))
        async with pool.acquire() as conn, conn.transaction():
            event_id = await enqueue(conn, api_key_issued(), source="/test")
        await wait_for(lambda: _unsent_is_zero(pool))
        [record] = await read_topic(settings, ApiKeyIssued.TOPIC, expect=1)
        assert Envelope.from_kafka(record.headers, record.value).id == event_id
        stop_second.set()
        await second_task
    finally:
        await producer.stop()
        await pool.close()


async def _true(value: bool) -> bool:
    return value


async def test_publish_continues_the_trace_of_the_request(
    settings: ServiceSettings, span_exporter: InMemorySpanExporter
) -> None:
    pool, producer = await _setup(settings)
    try:
        tracer = trace.get_tracer("test")
        with tracer.start_as_current_span("POST /v1/programs/{id}/keys") as request_span:
            async with pool.acquire() as conn, conn.transaction():
                event_id = await enqueue(conn, api_key_issued(), source="/test")
        request_ctx = request_span.get_span_context()

        relay = OutboxRelay(dsn=settings.database_url, producer=producer, poll_interval_s=0.2)
        async with running(relay.run):
            await wait_for(lambda: _unsent_is_zero(pool))
        [record] = await read_topic(settings, ApiKeyIssued.TOPIC, expect=1)
        env = Envelope.from_kafka(record.headers, record.value)
        assert env.id == event_id
        trace_id = env.trace["traceparent"].split("-")[1]
        assert trace_id == format(request_ctx.trace_id, "032x")

        publish = [
            s
            for s in span_exporter.get_finished_spans()
            if s.name == "apikey.issued publish"
            and s.attributes.get("messaging.message.id") == event_id
        ]
        assert len(publish) == 1
        assert publish[0].parent is not None
        assert publish[0].parent.span_id == request_ctx.span_id
        # The message names the publish span as its parent.
        assert env.trace["traceparent"].split("-")[2] == format(publish[0].context.span_id, "016x")
    finally:
        await producer.stop()
        await pool.close()


async def test_a_batched_block_writes_its_events_in_order_and_only_if_it_succeeds(
    settings: ServiceSettings,
) -> None:
    await migrated(settings.database_url)
    pool = await create_pool(settings.database_url)
    program = uuid.uuid4()
    try:
        async with pool.acquire() as conn, conn.transaction():
            async with batched(conn):
                ids = [
                    await enqueue(conn, api_key_issued(program), source="/test") for _ in range(5)
                ]
                # Nothing is written until the block ends: one statement for all.
                assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
            other = await enqueue(conn, api_key_issued(program), source="/test")  # written at once
        with pytest.raises(RuntimeError):
            async with pool.acquire() as conn, conn.transaction(), batched(conn):
                await enqueue(conn, api_key_issued(program), source="/test")
                raise RuntimeError("a handler failed")
        rows = await pool.fetch("SELECT event_id FROM outbox ORDER BY id")
        assert [str(r["event_id"]) for r in rows] == [*ids, other]
    finally:
        await pool.close()
