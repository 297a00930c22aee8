"""How many ``link.clicked`` events per second attribution stores.

Starts an embedded PostgreSQL and broker (or uses TEST_DATABASE_URL /
TEST_KAFKA_BOOTSTRAP_SERVERS), produces N clicks onto the topic, then times two consumers over
the same events and the same database, each from its first stored click to its last:

- baseline: the shared per-message consumer (a savepoint, an inbox row and an insert per
  message, one transaction per batch) with the single-click handler;
- batch: ``services.attribution.click_ingest.ClickConsumer``, what the service runs (one inbox
  statement and one multi-row insert per batch).

    python -m bench.attribution_clicks [N]
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

import asyncpg

from bench.servers import bench_servers
from services.attribution.click_ingest import ClickConsumer, store_click
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


async def _timed(pool: asyncpg.Pool, consumer: EventConsumer, n: int) -> float:
    async def stored() -> int:
        return int(await pool.fetchval("SELECT count(*) FROM clicks"))

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


async def main(n: int, root: Path) -> None:
    async with bench_servers("attribution", root) as settings:
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
            name="bench-per-message", handlers={LinkClicked.TOPIC: store_click}, **common
        )
        baseline = await _timed(pool, per_message, n)
        await pool.execute("TRUNCATE clicks")
        batch = await _timed(pool, ClickConsumer(name="bench-batch", **common), n)
        await producer.stop()
        await pool.close()
        print(f"baseline (per message): {n / baseline:8.0f} clicks/s ({baseline:.2f}s)")
        print(f"batch (ClickConsumer):  {n / batch:8.0f} clicks/s ({batch:.2f}s)")
        print(f"ratio batch/baseline: {baseline / batch:.2f}")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    tmp = Path(tempfile.mkdtemp(prefix="refplat-bench-"))
    tmp.chmod(0o755)
    try:
        asyncio.run(main(count, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
