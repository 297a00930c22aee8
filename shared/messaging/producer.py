"""Kafka producer and admin helpers configured from settings."""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.contracts import TOPICS, dlq_topic
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)
_TOPIC_EXISTS = 36


def make_producer(settings: ServiceSettings, **overrides: object) -> AIOKafkaProducer:
    """acks=all always: an acknowledged event is on every in-sync replica. aiokafka keeps one
    request in flight per broker, so ordering per partition holds with or without idempotence
    (Kafka allows at most five with it)."""
    compression = settings.kafka_compression_type
    options: dict[str, object] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "acks": "all",
        "enable_idempotence": settings.kafka_enable_idempotence,
        "compression_type": None if compression == "none" else compression,
        "linger_ms": 2,
        "request_timeout_ms": 15000,
        "client_id": settings.service_name,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def all_topics() -> list[str]:
    return [t for topic in TOPICS for t in (topic, dlq_topic(topic))]


def topic_configs(settings: ServiceSettings) -> dict[str, str]:
    """Per-topic settings the delivery guarantees rest on (docs/operations.md)."""
    return {
        # More than the replicas would refuse every acks=all write.
        "min.insync.replicas": str(
            min(settings.kafka_min_insync_replicas, settings.kafka_replication_factor)
        ),
        # Never elect a replica that missed acknowledged writes.
        "unclean.leader.election.enable": "false",
    }


async def ensure_topics(settings: ServiceSettings, topics: list[str] | None = None) -> list[str]:
    """Create missing topics (and their DLQ twins); existing ones are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        wanted = topics or all_topics()
        existing = set(await admin.list_topics())
        configs = topic_configs(settings)
        new = [
            NewTopic(
                t,
                settings.kafka_topic_partitions,
                settings.kafka_replication_factor,
                topic_configs=configs,
            )
            for t in wanted
            if t not in existing
        ]
        if not new:
            return []
        response = await admin.create_topics(new)
        created = []
        for name, code, *_ in response.topic_errors:
            if code == 0:
                created.append(name)
            elif code != _TOPIC_EXISTS:  # another replica may have won the race
                raise RuntimeError(f"creating topic {name} failed with error code {code}")
        log.info("created %d topic(s)", len(created))
        return created
    finally:
        await admin.close()
