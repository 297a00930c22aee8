"""What the per-service benchmarks share: a Postgres and a broker (embedded unless
TEST_DATABASE_URL / TEST_KAFKA_BOOTSTRAP_SERVERS name servers; ``TEST_BROKER=kafka`` or
``kafka-cluster`` starts Apache Kafka instead of Tansu), a fresh database with one service's
migrations, the topics, and settings pointing at all of it."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import psutil

from devstack.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from devstack.kafka import KafkaCluster
from devstack.profiles import broker_kind, kafka_nodes, settings_overrides
from shared.messaging.producer import ensure_topics
from shared.migrate import migrate
from shared.settings import ServiceSettings


@dataclass
class Infra:
    """Where the servers are, and the pids of those this process started (for CPU figures)."""

    dsn: str
    bootstrap: str
    kind: str
    pids: dict[str, int] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def bench_infra(root: Path) -> AsyncIterator[Infra]:
    pg = broker = kafka = None
    kind = broker_kind(os.environ.get("TEST_BROKER"))
    try:
        pids: dict[str, int] = {}
        dsn = os.environ.get("TEST_DATABASE_URL")
        bootstrap = os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS")
        if not dsn:
            pg = EmbeddedPostgres(root / "pg", free_port())
            pg.start()
            dsn = pg.url
            pids["postgres"] = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
        if bootstrap:
            kind = "kafka" if kind == "tansu" else kind  # a named server is taken for Kafka
        elif kind == "tansu":
            broker = EmbeddedBroker(free_port())
            broker.start()
            bootstrap = broker.bootstrap_servers
            if broker.pid is not None:
                pids["tansu"] = broker.pid
        else:
            kafka = KafkaCluster(root / "kafka", kafka_nodes(kind))
            kafka.start()
            bootstrap = kafka.bootstrap_servers
            pids.update({f"kafka-{n.node_id}": n.pid for n in kafka.nodes if n.pid is not None})
        yield Infra(dsn, bootstrap, kind, pids)
    finally:
        if broker is not None:
            broker.stop()
        if kafka is not None:
            kafka.stop()
        if pg is not None:
            pg.stop()


@contextlib.asynccontextmanager
async def bench_servers(service: str, root: Path) -> AsyncIterator[ServiceSettings]:
    async with bench_infra(root) as infra:
        yield await service_database(infra, service)


async def service_database(infra: Infra, service: str) -> ServiceSettings:
    """A fresh database with ``service``'s migrations, the topics, and settings for both."""
    admin = await asyncpg.connect(infra.dsn)
    db = f"bench_{service}_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{db}"')
    await admin.close()
    dsn = infra.dsn.rsplit("/", 1)[0] + f"/{db}"
    await migrate(service, dsn)
    settings = ServiceSettings(
        service_name="bench",
        database_url=dsn,
        kafka_bootstrap_servers=infra.bootstrap,
        **{**settings_overrides(infra.kind), "kafka_topic_partitions": 6},
        kafka_session_timeout_ms=6000,
    )
    await ensure_topics(settings)
    return settings


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children, live and exited (Postgres backends)."""
    try:
        proc = psutil.Process(pid)
        times = proc.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in proc.children(recursive=True):
            try:
                child_times = child.cpu_times()
                total += child_times.user + child_times.system
            except psutil.NoSuchProcess:
                pass
        return float(total)
    except psutil.NoSuchProcess:
        return 0.0
