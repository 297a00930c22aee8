"""How many conversions per second the rewards consumer turns into rewards.

Starts an embedded PostgreSQL and broker (or uses TEST_DATABASE_URL /
TEST_KAFKA_BOOTSTRAP_SERVERS), publishes a program and N ``referral.converted`` events
straight onto the topic with a producer, then runs the rewards service's consumer (the real
handlers, inbox, batching) in this process and times until every reward row exists.

Baseline, measured in the same run over the same events: the same consumer with a handler
that does nothing (inbox only), i.e. the ceiling the messaging backbone allows. The ratio
says what the reward rules, locks and ledger cost on top.

    python -m bench.rewards_throughput [N] [REFERRERS]
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bench.servers import bench_servers
from services.rewards.consumers import HANDLERS
from shared.contracts import ProgramPublished, ReferralConverted
from shared.contracts.base import Event
from shared.contracts.programs import ProgramDefinition
from shared.db import create_pool
from shared.messaging.consumer import EventConsumer
from shared.messaging.outbox import envelope_for
from shared.messaging.producer import make_producer
from shared.settings import ServiceSettings

POLICY = {
    "referrer": {"amount": 500, "unit": "MB", "lifetime_cap": 16_000},
    "referee": {"amount": 500, "unit": "MB"},
    "milestones": [{"threshold": 5, "perk": "invitation"}, {"threshold": 10, "perk": "edition"}],
}


async def _publish(settings: ServiceSettings, events: list[Event]) -> None:
    producer = make_producer(settings, linger_ms=5)
    await producer.start()
    try:
        for event in events:
            env = envelope_for(event, "/bench")
            await producer.send(
                event.TOPIC, value=env.data, key=event.key().encode(), headers=env.headers()
            )
        await producer.flush()
    finally:
        await producer.stop()


async def _run_consumer(
    settings: ServiceSettings,
    pool: asyncpg.Pool,
    name: str,
    handlers: dict[str, Any],
    done: Any,
) -> float:
    async def progress() -> int:
        return int(
            await pool.fetchval("SELECT count(*) FROM processed_events WHERE consumer = $1", name)
        )

    producer = make_producer(settings)
    await producer.start()
    consumer = EventConsumer(
        name=name,
        pool=pool,
        producer=producer,
        handlers=handlers,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        batch_size=settings.consumer_batch_size,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        session_timeout_ms=settings.kafka_session_timeout_ms,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        # Timed from the first applied message, so the group join is not counted.
        while True:
            if await progress() > 0:
                started = time.perf_counter()
                break
            await asyncio.sleep(0.005)
        while True:
            if await done():
                return time.perf_counter() - started
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await producer.stop()


async def main(n: int, referrers: int, root: Path) -> None:
    try:
        async with bench_servers("rewards", root) as settings:
            dsn = settings.database_url
            pool = await create_pool(dsn, max_size=4)

            program_id = uuid.uuid4()
            now = datetime.now(UTC)
            program = ProgramPublished(
                program_id=program_id,
                version=1,
                effective_from=now - timedelta(days=1),
                name="bench",
                definition=ProgramDefinition.model_validate(
                    {"destination_url": "https://shop.example.com/", "rewards": POLICY}
                ),
            )
            ids = [uuid.uuid4() for _ in range(referrers)]
            events: list[Event] = [
                ReferralConverted(
                    conversion_id=uuid.uuid4(),
                    referral_id=uuid.uuid4(),
                    program_id=program_id,
                    referrer_id=ids[i % referrers],
                    referee_customer_id=f"c{i}",
                    order_id=f"o{i}",
                    amount=4999,
                    currency="USD",
                    converted_at=now,
                    program_version=1,
                )
                for i in range(n)
            ]
            t = time.perf_counter()
            await _publish(settings, [program, *events])
            print(
                f"published {n} conversions for {referrers} referrers "
                f"in {time.perf_counter() - t:.1f}s"
            )

            async def noop(conn: asyncpg.Connection, event: Any, env: Any) -> None:
                return None

            async def baseline_done() -> bool:
                count = await pool.fetchval(
                    "SELECT count(*) FROM processed_events WHERE consumer = 'bench-baseline'"
                )
                return bool(count >= n + 1)

            baseline = await _run_consumer(
                settings,
                pool,
                "bench-baseline",
                {ReferralConverted.TOPIC: noop, ProgramPublished.TOPIC: noop},
                baseline_done,
            )

            per_referrer = n // referrers
            expected = n * 2 + referrers * sum(1 for t in (5, 10) if per_referrer >= t)

            async def rewards_done() -> bool:
                return bool(await pool.fetchval("SELECT count(*) FROM rewards") >= expected)

            measured = await _run_consumer(settings, pool, "bench-rewards", HANDLERS, rewards_done)
            unbalanced = await pool.fetchval(
                "SELECT count(*) FROM (SELECT entry_id FROM ledger_postings "
                "GROUP BY entry_id, unit HAVING sum(amount) <> 0) x"
            )
            await pool.close()
            print(f"baseline (inbox only): {n / baseline:8.0f} conversions/s ({baseline:.2f}s)")
            print(f"rewards (rules+ledger): {n / measured:8.0f} conversions/s ({measured:.2f}s)")
            print(f"ratio rewards/baseline throughput: {baseline / measured:.2f}")
            print(f"reward rows {expected}, unbalanced ledger entries {unbalanced}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    tmp = Path(tempfile.mkdtemp(prefix="bench-rewards-"))
    tmp.chmod(0o755)
    asyncio.run(
        main(
            int(sys.argv[1]) if len(sys.argv) > 1 else 5000,
            int(sys.argv[2]) if len(sys.argv) > 2 else 200,
            tmp,
        )
    )
