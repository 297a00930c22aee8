"""Fixtures that start real servers: an embedded PostgreSQL once per session and a fresh
in-memory Tansu broker per test (it starts in a fraction of a second, and a fresh log keeps
tests from reading each other's messages). ``TEST_DATABASE_URL`` and
``TEST_KAFKA_BOOTSTRAP_SERVERS`` point the tests at other servers instead."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.settings import ServiceSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
OUTPUT_DIR = REPO_ROOT / "test-output"


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


@pytest.fixture
def broker() -> Iterator[tuple[str, bool]]:
    """(bootstrap servers, whether it is the embedded broker)."""
    if servers := os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS"):
        yield servers, False
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
    return ServiceSettings(
        service_name="test",
        database_url=database_url,
        kafka_bootstrap_servers=bootstrap,
        kafka_enable_idempotence=not embedded,
        kafka_fetch_max_wait_ms=15 if embedded else 100,
        kafka_topic_partitions=3,
        consumer_retry_backoff_s=0.01,
        # Short, so a consumer restarted in a test gets its partitions back quickly (Tansu).
        kafka_session_timeout_ms=3000,
    )
