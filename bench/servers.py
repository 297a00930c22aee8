"""What the per-service benchmarks share: a Postgres and a broker (embedded unless
TEST_DATABASE_URL / TEST_KAFKA_BOOTSTRAP_SERVERS name servers), a fresh database with one
service's migrations, the topics, and settings pointing at all of it."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

from devstack.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from shared.messaging.producer import ensure_topics
from shared.migrate import migrate
from shared.settings import ServiceSettings


@contextlib.asynccontextmanager
async def bench_servers(service: str, root: Path) -> AsyncIterator[ServiceSettings]:
    pg = broker = None
    try:
        dsn = os.environ.get("TEST_DATABASE_URL")
        bootstrap = os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS")
        if not dsn:
            pg = EmbeddedPostgres(root / "pg", free_port())
            pg.start()
            dsn = pg.url
        if not bootstrap:
            broker = EmbeddedBroker(free_port())
            broker.start()
            bootstrap = broker.bootstrap_servers
        admin = await asyncpg.connect(dsn)
        db = f"bench_{service}_{uuid.uuid4().hex[:8]}"
        await admin.execute(f'CREATE DATABASE "{db}"')
        await admin.close()
        dsn = dsn.rsplit("/", 1)[0] + f"/{db}"
        await migrate(service, dsn)
        settings = ServiceSettings(
            service_name="bench",
            database_url=dsn,
            kafka_bootstrap_servers=bootstrap,
            # The embedded broker has no idempotent producer and wakes no long polls.
            kafka_enable_idempotence=broker is None,
            kafka_fetch_max_wait_ms=15 if broker else 100,
            kafka_topic_partitions=6,
            kafka_session_timeout_ms=6000,
        )
        await ensure_topics(settings)
        yield settings
    finally:
        if broker is not None:
            broker.stop()
        if pg is not None:
            pg.stop()
