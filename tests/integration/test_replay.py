"""Recovery tools against the real broker: outbox replay since a time, and DLQ replay."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg

from shared.contracts import ApiKeyIssued
from shared.db import connect
from shared.messaging.dlq import replay, show
from shared.messaging.envelope import Envelope
from shared.messaging.outbox import enqueue, envelope_for
from shared.messaging.relay import OutboxRelay
from shared.messaging.replay import mark_for_replay
from shared.settings import ServiceSettings
from tests.integration.kafka_helpers import count, read_topic, running, wait_for
from tests.integration.test_consumer import TOPIC, _consumer, _processed, _send
from tests.integration.test_consumer import _setup as consumer_setup
from tests.integration.test_outbox_relay import _setup as relay_setup
from tests.integration.test_outbox_relay import _unsent_is_zero, key_event


async def test_events_sent_since_a_time_are_published_again(settings: ServiceSettings) -> None:
    pool, producer = await relay_setup(settings)
    try:
        relay = OutboxRelay(dsn=settings.database_url, producer=producer, poll_interval_s=0.1)
        async with running(relay.run):
            async with pool.acquire() as conn, conn.transaction():
                early = [await enqueue(conn, key_event(), source="/t") for _ in range(3)]
            await wait_for(lambda: _unsent_is_zero(pool))
            await asyncio.sleep(0.05)
            since = datetime.now(UTC)
            async with pool.acquire() as conn, conn.transaction():
                late = [await enqueue(conn, key_event(), source="/t") for _ in range(2)]
            await wait_for(lambda: _unsent_is_zero(pool))

            conn = await connect(settings.database_url)
            try:
                assert await mark_for_replay(conn, since, ["other.topic"]) == 0
                assert await mark_for_replay(conn, since, [ApiKeyIssued.TOPIC]) == 2
            finally:
                await conn.close()
            await wait_for(lambda: _unsent_is_zero(pool))
        records = await read_topic(settings, ApiKeyIssued.TOPIC, expect=7)
        ids = [Envelope.from_kafka(r.headers, r.value).id for r in records]
        assert sorted(ids) == sorted(early + late + late)
    finally:
        await producer.stop()
        await pool.close()


async def test_a_fixed_dead_letter_is_replayed_once_and_applied_once(
    settings: ServiceSettings,
) -> None:
    pool, producer = await consumer_setup(settings)
    broken = {"on": True}
    try:

        async def handler(conn: asyncpg.Connection, ev: ApiKeyIssued, env: Envelope) -> None:
            if broken["on"]:
                raise RuntimeError("bug in the handler")
            await conn.execute("INSERT INTO effects (key_id) VALUES ($1)", ev.key_id)

        env = envelope_for(key_event(), "/t")
        await _send(producer, env)
        consumer = _consumer(settings, pool, producer, handler)
        async with running(consumer.run):
            [letter] = await wait_for(lambda: show(settings, TOPIC))
            assert letter["ce_id"] == env.id and letter["error"] == "bug in the handler"
            assert letter["consumer"] == "test"

            broken["on"] = False  # the fix is deployed
            assert await replay(settings, TOPIC, consumer_name="someone-else") == 0
            assert await replay(settings, TOPIC, consumer_name="test") == 1
            await wait_for(lambda: _processed(pool, 1))
            assert await replay(settings, TOPIC, consumer_name="test") == 0  # once only
        assert await count(pool, "SELECT count(*) FROM effects") == 1
        # An unfiltered replay sends it again; the inbox makes that harmless.
        assert await replay(settings, TOPIC) == 1
        async with running(consumer.run):
            await asyncio.sleep(1.0)
        assert await count(pool, "SELECT count(*) FROM effects") == 1
    finally:
        await producer.stop()
        await pool.close()
