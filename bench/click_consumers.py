"""How many ``link.clicked`` events per second a service's click consumer stores: attribution
(one row per click, for attribution) or links (per-participant-per-day counters of the
analytics read model).

Starts an embedded PostgreSQL and broker (or uses TEST_DATABASE_URL /
TEST_KAFKA_BOOTSTRAP_SERVERS), produces N clicks onto the topic, then times two consumers over
the same events and the same database, each from its first stored click to its last:

- baseline: the shared per-message consumer (a savepoint, an inbox row and a statement per
  message, one transaction per batch) with the service's single-click handler;
- batch: the consumer the service runs (``ClickConsumer`` in attribution, ``ClickCounter`` in
  links: one inbox statement and one multi-row statement per batch).

    python -m bench.click_consumers [N] [attribution|links]
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench.servers import bench_servers
from services.attribution.click_ingest import ClickConsumer, store_click
from services.links.insights.projector import ClickCounter, on_clicked
from shared.contracts import LinkClicked
from shared.db import create_pool
from shared.messaging.consumer import EventConsumer
from shared.messaging.outbox import envelope_for
from shared.messaging.producer import make_producer
from shared.settings import ServiceSettings


async def _produce(settings: ServiceSettings, n: int) -> None:
    producer = make_producer(settings, linger_ms=5)
    await producer.start()
    try:
        program, participants = uuid.uuid4(), [uuid.uuid4() for _ in range(50)]
        for i in range(n):
            code = f"CODE{i % 50:04d}"
            event = LinkClicked(
                click_id=uuid.uuid4(), code=code, program_id=program,
                participant_id=participants[i % 50], clicked_at=datetime.now(UTC),
                visitor_hash=uuid.uuid4().hex,
            )  # fmt: skip
            env = envelope_for(event, "/bench")
            await producer.send(
                event.TOPIC, value=env.data, key=code.encode(), headers=env.headers()
            )
        await producer.flush()
    finally:
        await producer.stop()


# Per service: the batch consumer, the per-message handler, what counts stored clicks, what
# empties the table between the two runs.
SERVICES: dict[str, tuple[type[EventConsumer], Any, str, str]] = {
    "attribution": (ClickConsumer, store_click, "SELECT count(*) FROM clicks", "TRUNCATE clicks"),
    "links": (
        ClickCounter,
        on_clicked,
        "SELECT coalesce(sum(clicks), 0) FROM rm_clicks_daily",
        "TRUNCATE rm_clicks_daily",
    ),
}


async def _timed(pool: asyncpg.Pool, consumer: EventConsumer, n: int, count_sql: str) -> float:
    async def stored() -> int:
        return int(await pool.fetchval(count_sql))

    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        # Timed from the first stored click, so the group join is not counted.
        while True:
            if await stored() > 0:
                started = time.perf_counter()
                break
            await asyncio.sleep(0.005)
        while True:
            if await stored() >= n:
                return time.perf_counter() - started
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def main(n: int, service: str, root: Path) -> None:
    batch_consumer, handler, count_sql, truncate_sql = SERVICES[service]
    async with bench_servers(service, root) as settings:
        dsn = settings.database_url
        bootstrap = settings.kafka_bootstrap_servers
        t = time.perf_counter()
        await _produce(settings, n)
        print(f"produced {n} clicks in {time.perf_counter() - t:.1f}s")
        pool = await create_pool(dsn, max_size=4)
        producer = make_producer(settings)
        await producer.start()
        common = {
            "pool": pool,
            "producer": producer,
            "bootstrap_servers": bootstrap,
            "batch_size": 500,
            "fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms,
            "session_timeout_ms": settings.kafka_session_timeout_ms,
        }
        per_message = EventConsumer(
            name="bench-per-message", handlers={LinkClicked.TOPIC: handler}, **common
        )
        baseline = await _timed(pool, per_message, n, count_sql)
        await pool.execute(truncate_sql)
        batch_run = batch_consumer(
            name="bench-batch", handlers={LinkClicked.TOPIC: handler}, **common
        )
        batch = await _timed(pool, batch_run, n, count_sql)
        await producer.stop()
        await pool.close()
        print(f"baseline (per message): {n / baseline:8.0f} clicks/s ({baseline:.2f}s)")
        print(f"batch ({batch_consumer.__name__}): {n / batch:8.0f} clicks/s ({batch:.2f}s)")
        print(f"ratio batch/baseline: {baseline / batch:.2f}")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    which = sys.argv[2] if len(sys.argv) > 2 else "attribution"
    tmp = Path(tempfile.mkdtemp(prefix="refplat-bench-"))
    tmp.chmod(0o755)
    try:
        asyncio.run(main(count, which, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
