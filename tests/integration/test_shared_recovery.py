"""Recovery tools against the real broker: re-publishing the outbox since a time (also after
the broker lost its whole log), and re-sending dead letters."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from devstack.embedded import AUTO_CREATED_PARTITIONS, EmbeddedBroker, free_port
from shared.contracts import ApiKeyIssued, ReferralConverted
from shared.db import connect, create_pool
from shared.messaging.dlq import resend, show
from shared.messaging.envelope import Envelope
from shared.messaging.outbox import enqueue, envelope_for
from shared.messaging.producer import all_topics, ensure_topics
from shared.messaging.relay import OutboxRelay
from shared.messaging.republish import mark_unsent_since, republish_since
from shared.service import start_producer
from shared.settings import ServiceSettings
from tests.factories import api_key_issued
from tests.integration.kafka_helpers import count, migrated, read_topic, running, wait_for
from tests.integration.test_shared_consumer import TOPIC, _consumer, _processed, _send
from tests.integration.test_shared_consumer import _setup as consumer_setup
from tests.integration.test_shared_outbox_relay import _setup as relay_setup
from tests.integration.test_shared_outbox_relay import _unsent_is_zero


async def test_events_sent_since_a_time_are_published_again(settings: ServiceSettings) -> None:
    pool, producer = await relay_setup(settings)
    try:
        relay = OutboxRelay(dsn=settings.database_url, producer=producer, poll_interval_s=0.1)
        async with running(relay.run):
            async with pool.acquire() as conn, conn.transaction():
                early = [await enqueue(conn, api_key_issued(), source="/t") for _ in range(3)]
            await wait_for(lambda: _unsent_is_zero(pool))
            await asyncio.sleep(0.05)
            since = datetime.now(UTC)
            async with pool.acquire() as conn, conn.transaction():
                late = [await enqueue(conn, api_key_issued(), source="/t") for _ in range(2)]
            await wait_for(lambda: _unsent_is_zero(pool))

            conn = await connect(settings.database_url)
            try:
                assert await mark_unsent_since(conn, since, ["other.topic"]) == 0
                assert await mark_unsent_since(conn, since, [ApiKeyIssued.TOPIC]) == 2
            finally:
                await conn.close()
            await wait_for(lambda: _unsent_is_zero(pool))
        records = await read_topic(settings, ApiKeyIssued.TOPIC, expect=7)
        ids = [Envelope.from_kafka(r.headers, r.value).id for r in records]
        assert sorted(ids) == sorted(early + late + late)
    finally:
        await producer.stop()
        await pool.close()


async def test_a_fixed_dead_letter_is_resent_once_and_applied_once(
    settings: ServiceSettings,
) -> None:
    pool, producer = await consumer_setup(settings)
    broken = {"on": True}
    try:

        async def handler(conn: asyncpg.Connection, ev: ApiKeyIssued, env: Envelope) -> None:
            if broken["on"]:
                raise RuntimeError("bug in the handler")
            await conn.execute("INSERT INTO effects (key_id) VALUES ($1)", ev.key_id)

        env = envelope_for(api_key_issued(), "/t")
        await _send(producer, env)
        consumer = _consumer(settings, pool, producer, handler)
        async with running(consumer.run):
            [letter] = await wait_for(lambda: show(settings, TOPIC))
            assert letter["ce_id"] == env.id and letter["error"] == "bug in the handler"
            assert letter["consumer"] == "test"

            broken["on"] = False  # the fix is deployed
            assert await resend(settings, TOPIC, consumer_name="someone-else") == 0
            assert await resend(settings, TOPIC, consumer_name="test") == 1
            await wait_for(lambda: _processed(pool, 1))
            assert await resend(settings, TOPIC, consumer_name="test") == 0  # once only
        assert await count(pool, "SELECT count(*) FROM effects") == 1
        # An unfiltered resend sends it again; the inbox makes that harmless.
        assert await resend(settings, TOPIC) == 1
        async with running(consumer.run):
            await asyncio.sleep(1.0)
        assert await count(pool, "SELECT count(*) FROM effects") == 1
    finally:
        await producer.stop()
        await pool.close()


# Restarts the embedded broker: runs in the Tansu pass only (tests/conftest.py).
embedded_only = pytest.mark.tansu_only


async def _partition_counts(bootstrap: str) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(await admin.list_topics())
        return {t["topic"]: len(t["partitions"]) for t in described}
    finally:
        await admin.close()


@embedded_only
async def test_the_embedded_broker_recreates_topics_with_the_stacks_partition_count() -> None:
    """Any client recreates its topics on a restarted Tansu before ``ensure_topics`` can; the
    stack relies on them getting AUTO_CREATED_PARTITIONS partitions (devstack/embedded.py)."""
    broker = EmbeddedBroker(free_port())
    broker.start()
    try:
        producer = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap_servers, enable_idempotence=False
        )
        await producer.start()
        try:
            assert len(await producer.partitions_for("never.created")) == AUTO_CREATED_PARTITIONS
        finally:
            await producer.stop()
    finally:
        broker.stop()


@embedded_only
async def test_after_the_broker_lost_its_log_republishing_recreates_topics_and_sends_again(
    settings: ServiceSettings,
) -> None:
    broker = EmbeddedBroker(free_port())
    broker.start()
    settings = settings.model_copy(
        update={
            "kafka_bootstrap_servers": broker.bootstrap_servers,
            "kafka_topic_partitions": AUTO_CREATED_PARTITIONS,
        }
    )
    await migrated(settings.database_url)
    await ensure_topics(settings, [ApiKeyIssued.TOPIC])
    pool, producer = await create_pool(settings.database_url), await start_producer(settings)
    try:
        relay = OutboxRelay(dsn=settings.database_url, producer=producer, poll_interval_s=0.1)
        async with running(relay.run):
            async with pool.acquire() as conn, conn.transaction():
                sent = [await enqueue(conn, api_key_issued(), source="/t") for _ in range(3)]
            await wait_for(lambda: _unsent_is_zero(pool))

            restarted_at = datetime.now(UTC)
            await asyncio.to_thread(broker.restart)
            assert await read_topic(settings, ApiKeyIssued.TOPIC, expect=1, timeout_s=2) == []

            since = restarted_at - timedelta(seconds=60)
            created, handed_back = await republish_since(settings, since)
            assert handed_back == 3
            assert ReferralConverted.TOPIC in created  # nobody had asked for it since
            counts = await _partition_counts(settings.kafka_bootstrap_servers)
            assert {t: counts.get(t) for t in all_topics()} == dict.fromkeys(
                all_topics(), AUTO_CREATED_PARTITIONS
            )
            await wait_for(lambda: _unsent_is_zero(pool))  # the same producer reconnected
        records = await read_topic(settings, ApiKeyIssued.TOPIC, expect=3)
        assert sorted(Envelope.from_kafka(r.headers, r.value).id for r in records) == sorted(sent)
    finally:
        await producer.stop()
        await pool.close()
        broker.stop()
