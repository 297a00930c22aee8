"""Topic helpers, and ``python -m shared.messaging.topics``: create every topic and its DLQ
twin, idempotently."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.messaging.producer import all_topics, ensure_topics
from shared.settings import ServiceSettings


async def topic_partitions(
    consumer: AIOKafkaConsumer, topics: Iterable[str] | None = None
) -> list[TopicPartition]:
    """Every partition of ``topics`` (all topics when None) that the cluster has now, for a
    consumer that assigns itself partitions. ``consumer.partitions_for_topic`` alone is not
    enough: it reads the client's cached metadata, which on Apache Kafka names no topic until
    one is subscribed or assigned (Tansu's bootstrap answer happens to list them all), and
    ``consumer.topics()`` fetches the partitions but returns only the names."""
    cluster = await consumer._client.fetch_all_metadata()
    names = cluster.topics() if topics is None else set(topics)
    return [
        TopicPartition(topic, p)
        for topic in sorted(names)
        for p in sorted(cluster.partitions_for_topic(topic) or ())
    ]


def main() -> None:
    created = asyncio.run(ensure_topics(ServiceSettings()))
    print(f"{len(all_topics())} topics present, {len(created)} created")


if __name__ == "__main__":
    main()
