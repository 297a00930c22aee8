"""The import runner on a real Postgres: a job whose runner dies mid-batch is taken over by
another once the lease runs out, and every row is applied exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg

from shared.db import create_pool
from shared.imports import repository as repo
from shared.imports.models import Columns, Row
from shared.imports.runner import BatchResult, ImportRunner
from shared.imports.upload import ImportKind, receive
from tests.integration.kafka_helpers import migrated

PROBE = ImportKind("probe", Columns(required=("id",)), lambda values: values)


async def _csv(rows: int) -> AsyncIterator[bytes]:
    yield b"id\n" + b"".join(f"r{i}\n".encode() for i in range(rows))


async def test_a_dead_runners_job_is_taken_over_and_no_row_is_applied_twice(
    database_url: str,
) -> None:
    await migrated(database_url, "links")
    pool = await create_pool(database_url)
    try:
        applied: list[str] = []
        entered = asyncio.Event()

        async def dies(
            conn: asyncpg.Connection, job: asyncpg.Record, rows: list[Row]
        ) -> BatchResult:
            if applied:  # the second batch: the process dies in the middle of it
                entered.set()
                await asyncio.Event().wait()
            await conn.execute("SELECT 1")
            applied.extend(r.values["id"] for r in rows)  # type: ignore[misc]
            return BatchResult(created=len(rows))

        async def survives(
            conn: asyncpg.Connection, job: asyncpg.Record, rows: list[Row]
        ) -> BatchResult:
            applied.extend(r.values["id"] for r in rows)  # type: ignore[misc]
            return BatchResult(created=len(rows))

        job = await receive(pool, PROBE, uuid.uuid4(), "csv", _csv(25), None)
        first = ImportRunner(pool, {"probe": dies}, batch_rows=10, lease_s=1.0)
        dying = asyncio.create_task(first.run_once())
        await asyncio.wait_for(entered.wait(), 30)
        dying.cancel()  # no lease released, no error recorded: as a killed process leaves it
        second = ImportRunner(pool, {"probe": survives}, batch_rows=10, lease_s=1.0)
        assert not await second.run_once()  # the lease still holds
        deadline = asyncio.get_running_loop().time() + 30
        while not await second.run_once():
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.2)
        done = await repo.get_import(pool, job["id"])
        assert done is not None and done["status"] == "completed"
        assert (done["rows_done"], done["rows_created"]) == (25, 25)
        assert sorted(applied) == sorted(f"r{i}" for i in range(25))  # each once
        assert await pool.fetchval("SELECT count(*) FROM import_rows") == 0
    finally:
        await pool.close()
