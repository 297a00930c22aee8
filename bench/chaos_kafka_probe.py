"""What the failover chaos run asks a Kafka cluster: is it whole again (every broker back, no
partition under-replicated), which broker leads the busiest partition, and how long each
consumer group took to resume after a fault.

**Resume time** of a group after a fault: from the moment the fault struck (a SIGKILL, a
SIGCONT, the SIGTERM of one step of a rolling restart) until the group had committed, on every
partition of its topics, an offset at least as high as that partition's log end right after the
fault struck. While a partition has no leader its log end cannot be read; it is read as soon as
it can, so the time includes the leader election. It is the time until everything that was
waiting when the fault struck had been processed and committed.

Every request has a short timeout and is retried: a paused broker answers nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

if TYPE_CHECKING:
    from devstack.kafka import KafkaCluster

T = TypeVar("T")
REQUEST_TIMEOUT_MS = 4000
# Every consumer group of the four services (docs/operations.md, "Disaster recovery").
GROUPS = ("attribution", "attribution-clicks", "rewards", "notifications", "links", "links-clicks")


async def _retry(what: Callable[[], Awaitable[T]], timeout_s: float, label: str) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await asyncio.wait_for(what(), REQUEST_TIMEOUT_MS / 1000 + 1)
        except (KafkaError, OSError, TimeoutError, ValueError, KeyError):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{label}: no answer within {timeout_s:.0f}s") from None
            await asyncio.sleep(0.3)


def active_controller(cluster: KafkaCluster) -> int:
    """The KRaft quorum leader, from the ``quorum-state`` file each running node keeps (the
    highest leader epoch wins). Reading files instead of running the launcher's JVM tool keeps
    the answer quick on a loaded machine, where that tool can take over a minute."""
    best: tuple[int, int] | None = None
    for node in cluster.nodes:
        if not node.running:
            continue
        path = node.root / "data" / "__cluster_metadata-0" / "quorum-state"
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        leader, epoch = int(state.get("leaderId", -1)), int(state.get("leaderEpoch", -1))
        if leader >= 0 and (best is None or epoch > best[1]):
            best = (leader, epoch)
    if best is None:
        raise RuntimeError("no running kafka node records a quorum leader")
    return best[0]


class ClusterProbe:
    """One admin client and one group-less consumer for the run's questions."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=REQUEST_TIMEOUT_MS
        )
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=REQUEST_TIMEOUT_MS,
            metadata_max_age_ms=1000,
        )

    async def start(self) -> None:
        await self.admin.start()
        await self.consumer.start()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.admin.close()
        with contextlib.suppress(Exception):
            await self.consumer.stop()

    async def _topics(self) -> list[dict[str, Any]]:
        return await self.admin.describe_topics()

    async def partitions(self, topics: set[str]) -> dict[TopicPartition, dict[str, Any]]:
        """Partition -> its metadata (leader, replicas, isr), for the given topics."""
        described = await _retry(self._topics, 30, "describe topics")
        return {
            TopicPartition(t["topic"], p["partition"]): p
            for t in described
            if t["topic"] in topics
            for p in t["partitions"]
        }

    async def health(self) -> tuple[int, int]:
        """(brokers in the metadata, partitions missing a leader or a replica in their ISR)."""
        metadata = await _retry(self.admin._get_cluster_metadata, 30, "metadata")
        obj = metadata.to_object()
        unhealthy = sum(
            1
            for t in obj["topics"]
            for p in t["partitions"]
            if p["leader"] < 0 or set(p["isr"]) != set(p["replicas"])
        )
        return len(obj["brokers"]), unhealthy

    async def wait_healthy(self, brokers: int, timeout_s: float = 300) -> float:
        """Until every broker is back and no partition is under-replicated; returns the wait."""
        began = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                seen, unhealthy = await self.health()
                if seen == brokers and unhealthy == 0:
                    return time.monotonic() - began
            if time.monotonic() - began > timeout_s:
                raise TimeoutError(f"cluster not whole again within {timeout_s:.0f}s")
            await asyncio.sleep(0.5)

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        async def ask() -> dict[TopicPartition, int]:
            return await self.consumer.end_offsets(partitions)  # type: ignore[no-any-return]

        return await _retry(ask, 120, "log end offsets")

    async def busiest(self, topics: set[str]) -> tuple[TopicPartition, int]:
        """The partition with the most messages among ``topics``, and its leader."""
        partitions = await self.partitions(topics)
        ends = await self.end_offsets(list(partitions))
        tp = max(ends, key=lambda p: ends[p])
        return tp, int(partitions[tp]["leader"])

    async def committed(self, group: str) -> dict[TopicPartition, int]:
        async def ask() -> dict[TopicPartition, int]:
            offsets = await self.admin.list_consumer_group_offsets(group)
            return {tp: meta.offset for tp, meta in offsets.items()}

        return await _retry(ask, 5, f"offsets of {group}")

    async def resume_times(
        self, struck: float, groups: tuple[str, ...] = GROUPS, timeout_s: float = 300
    ) -> dict[str, float | None]:
        """Seconds from ``struck`` (time.monotonic) until each group caught up with the log
        ends read right after it; None for a group that did not within the timeout. The
        groups are asked together, so one slow answer does not delay the others' times."""
        first = await asyncio.gather(
            *(_retry(lambda g=g: self.committed(g), 120, f"offsets of {g}") for g in groups)
        )
        topics = {g: {tp.topic for tp in c} for g, c in zip(groups, first, strict=True)}
        partitions = await self.partitions(set().union(*topics.values()))
        ends = await self.end_offsets(list(partitions))
        targets = {g: {tp: e for tp, e in ends.items() if tp.topic in topics[g]} for g in groups}

        def caught_up(group: str, committed: dict[TopicPartition, int]) -> bool:
            return all(
                end == 0 or committed.get(tp, -1) >= end for tp, end in targets[group].items()
            )

        resumed: dict[str, float | None] = {}
        pending = list(groups)
        deadline = time.monotonic() + timeout_s
        while pending and time.monotonic() < deadline:
            answers = await asyncio.gather(
                *(self.committed(g) for g in pending), return_exceptions=True
            )
            now = time.monotonic()
            for group, committed in zip(list(pending), answers, strict=True):
                if isinstance(committed, dict) and caught_up(group, committed):
                    resumed[group] = now - struck
                    pending.remove(group)
            if pending:
                await asyncio.sleep(0.2)
        resumed.update({g: None for g in pending})
        return resumed
