"""Reproduction of a consumer stall the failover chaos run found (aiokafka 0.14).

A consumer partition with no committed offset (or after ``seek_to_beginning``) gets its position
from a ListOffsets request to the partition's leader *as the client's metadata has it*. When that
answer is NotLeaderForPartition, aiokafka's ``Fetcher._update_fetch_positions`` logs
"Failed fetch offsets from N", sleeps ``retry_backoff_ms`` and tries the same node again: unlike
the fetch path it never asks for new metadata. The partition stays without a position until the
periodic refresh (``metadata_max_age_ms``, 5 minutes by default) or until leadership happens to
move back. In the chaos run this stalled the `notifications` group for 200 s after a broker
pause: the paused broker, resumed, answered a metadata request with its stale view (itself as
leader) before catching up, and the reset then asked it forever.

The run below stages exactly that: a three-node cluster, a topic with replication 3, a consumer
whose metadata names a follower as the leader of the partition (what the lagging broker told
it), then a reset. With the default metadata age the position is still unknown after 30 s; with
``metadata_max_age_ms=3000`` (the workaround for shared/messaging's consumers) it is found
within seconds.

    python -m bench.chaos_offset_reset_repro
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.chaos_kafka import _start_cluster
from devstack.kafka import KafkaCluster

TOPIC = "repro.offset-reset"
WAIT_S = 30.0


async def _position_after_stale_leader(bootstrap: str, metadata_max_age_ms: int) -> float | None:
    """Seconds until the reset position is known, None if not within WAIT_S."""
    tp = TopicPartition(TOPIC, 0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        metadata_max_age_ms=metadata_max_age_ms,
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.position(tp)
        cluster = consumer._client.cluster
        current = cluster._partitions[TOPIC][0]
        follower = next(r for r in current.replicas if r != current.leader)
        # The stale answer of a lagging broker: a follower named as the leader.
        cluster._partitions[TOPIC][0] = current._replace(leader=follower)
        began = time.monotonic()
        consumer.seek_to_beginning(tp)
        try:
            await asyncio.wait_for(consumer.position(tp), WAIT_S)
        except TimeoutError:
            return None
        return time.monotonic() - began
    finally:
        await consumer.stop()


async def run(bootstrap: str) -> dict[int, float | None]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, 1, 3)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(TOPIC, b"one")
    finally:
        await producer.stop()
    return {age: await _position_after_stale_leader(bootstrap, age) for age in (300_000, 3_000)}


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="refplat-offset-reset-"))
    cluster = KafkaCluster(root, size=3)
    try:
        _start_cluster(cluster)
        found = asyncio.run(run(cluster.bootstrap_servers))
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    for age, seconds in found.items():
        what = f"position after {seconds:.1f}s" if seconds is not None else f"no position {WAIT_S}s"
        print(f"metadata_max_age_ms={age}: {what}")
    stalled = found[300_000] is None
    print("reproduced: the reset never refreshes metadata" if stalled else "not reproduced")
    return 1 if stalled else 0


if __name__ == "__main__":
    sys.exit(main())
