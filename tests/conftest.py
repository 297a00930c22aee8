"""Fixtures that start real servers: an embedded PostgreSQL once per session and a fresh
in-memory Tansu broker per test (it starts in a fraction of a second, and a fresh log keeps
tests from reading each other's messages). ``TEST_DATABASE_URL`` and
``TEST_KAFKA_BOOTSTRAP_SERVERS`` point the tests at other servers instead.

``TEST_BROKER=kafka`` runs the tests on Apache Kafka instead: one node started once for the
session (``devstack.kafka``), every topic that holds messages deleted before each test so that
none reads another's messages or committed offsets, and the production settings except the
replication factor. That pass runs only the integration and e2e tests that talk to the broker;
the tests that stop and restart the embedded broker itself stay on Tansu."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from devstack.profiles import broker_kind, kafka_nodes, settings_overrides
from shared.settings import ServiceSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
OUTPUT_DIR = REPO_ROOT / "test-output"
TEST_BROKER = broker_kind(os.environ.get("TEST_BROKER"))
# Fixtures of tests that need the embedded broker itself (they stop and restart it).
_TANSU_ONLY_FIXTURES = {"controlled_broker"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "tansu_only: needs the embedded broker itself")


def _tansu_only(item: pytest.Item) -> bool:
    names = set(getattr(item, "fixturenames", ()))
    return bool(names & _TANSU_ONLY_FIXTURES) or item.get_closest_marker("tansu_only") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On Apache Kafka, keep the tests that talk to the broker through the shared fixtures;
    the others have just run on Tansu and would only repeat themselves."""
    if TEST_BROKER == "tansu":
        if os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS"):
            skip = pytest.mark.skip(reason="needs the embedded broker itself")
            for item in items:
                if item.get_closest_marker("tansu_only") is not None:
                    item.add_marker(skip)
        return
    keep, drop = [], []
    for item in items:
        uses_broker = bool(set(getattr(item, "fixturenames", ())) & {"broker", "stack"})
        (keep if uses_broker and not _tansu_only(item) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _temp_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)  # the embedded server may run as another user
    return path


@pytest.fixture(scope="session")
def span_exporter() -> InMemorySpanExporter:
    """Spans recorded in this process, for tests that check trace propagation."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # the global provider can be set only once
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
        return
    from devstack.embedded import EmbeddedPostgres, free_port

    root = _temp_dir("refplat-pg-")
    server = EmbeddedPostgres(root / "data", free_port())
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def database_url(pg_server_url: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(pg_server_url)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[object]:
    """One Apache Kafka node for the whole session (it takes seconds to start, not millis)."""
    from devstack.kafka import KafkaCluster
    from devstack.kafka.cluster import QUICK_JVM

    root = _temp_dir("refplat-kafka-")
    # Topics created on first use get the partition count the ``settings`` fixture asks for.
    cluster = KafkaCluster(
        root, kafka_nodes(TEST_BROKER), heap_mb=384, default_partitions=3, jvm_options=QUICK_JVM
    )
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


async def _delete_used_topics(bootstrap: str, timeout_s: float = 60.0) -> None:
    """Delete every topic that holds messages (Kafka's own excepted); their committed offsets
    go with them. Empty topics stay: nothing in them can leak into the next test, and creating
    and deleting some seventy topics per test would cost more than the tests themselves."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    from shared.messaging.topics import topic_partitions

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await consumer.start()
    await admin.start()
    try:
        parts = [tp for tp in await topic_partitions(consumer) if not tp.topic.startswith("__")]
        ends = await consumer.end_offsets(parts) if parts else {}
        used = sorted({tp.topic for tp, end in ends.items() if end > 0})
        deadline = time.monotonic() + timeout_s
        while used:
            await admin.delete_topics(used)
            await asyncio.sleep(0.1)
            used = sorted(set(used) & set(await admin.list_topics()))
            if used and time.monotonic() > deadline:
                raise TimeoutError(f"topics not deleted in time: {used}")
    finally:
        await admin.close()
        await consumer.stop()


def _run_async(coro: object) -> None:
    with ThreadPoolExecutor(1) as pool:  # this may be called while the test loop is running
        pool.submit(asyncio.run, coro).result()  # type: ignore[arg-type]


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> Iterator[tuple[str, bool]]:
    """(bootstrap servers, whether it is the embedded broker)."""
    if servers := os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS"):
        yield servers, False
        return
    if TEST_BROKER != "tansu":
        cluster = request.getfixturevalue("kafka_cluster")
        _run_async(_delete_used_topics(cluster.bootstrap_servers))
        yield cluster.bootstrap_servers, False
        return
    from devstack.embedded import EmbeddedBroker, free_port

    server = EmbeddedBroker(free_port())
    server.start()
    try:
        yield server.bootstrap_servers, True
    finally:
        server.stop()


@pytest.fixture
def settings(database_url: str, broker: tuple[str, bool]) -> ServiceSettings:
    bootstrap, embedded = broker
    # A server named by TEST_KAFKA_BOOTSTRAP_SERVERS is taken for a one-node Kafka.
    kind = "tansu" if embedded else ("kafka" if TEST_BROKER == "tansu" else TEST_BROKER)
    profile = settings_overrides(kind)
    return ServiceSettings(
        service_name="test",
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap,
        **{**profile, "kafka_topic_partitions": 3},
        consumer_retry_backoff_s=0.01,
        # Short, so a consumer restarted in a test gets its partitions back quickly (Tansu).
        # Kafka refuses less than its group.min.session.timeout.ms (6 s by default).
        kafka_session_timeout_ms=3000 if embedded else 6000,
    )
