"""Helpers for integration tests that read and write real topics."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from shared.db import connect
from shared.migrate import apply, discover
from shared.settings import ServiceSettings


async def migrated(dsn: str, component: str = "shared") -> None:
    conn = await connect(dsn)
    try:
        await apply(
            conn, discover("shared") + ([] if component == "shared" else discover(component))
        )
    finally:
        await conn.close()


async def read_topic(
    settings: ServiceSettings, topic: str, *, expect: int, timeout_s: float = 15.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read a topic from the start until ``expect`` messages arrived (or time runs out)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(records) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
        return records
    finally:
        await consumer.stop()


async def wait_for(probe: Callable[[], Awaitable[Any]], timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(
    coro_fn: Callable[[asyncio.Event], Awaitable[None]],
) -> AsyncIterator[asyncio.Event]:
    """Run a background loop (relay, consumer) for the body of a ``with`` block."""
    stop = asyncio.Event()
    task = asyncio.create_task(coro_fn(stop))  # type: ignore[arg-type]
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def count(pool: asyncpg.Pool | asyncpg.Connection, sql: str, *args: Any) -> int:
    return int(await pool.fetchval(sql, *args))
