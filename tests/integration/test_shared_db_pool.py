"""The services' pool returns connections without a reset round trip, and still never hands
out a connection inside a transaction."""

from __future__ import annotations

from shared.db import create_pool
from shared.settings import ServiceSettings


async def test_a_returned_connection_costs_no_reset_statement(settings: ServiceSettings) -> None:
    pool = await create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
            sent = conn._protocol.queries_count  # type: ignore[attr-defined]
            raw = conn._con  # type: ignore[attr-defined]
        async with pool.acquire() as again:
            assert again._con is raw  # type: ignore[attr-defined]
            # asyncpg's default would have sent RESET ALL / UNLISTEN * / CLOSE ALL meanwhile.
            assert again._protocol.queries_count == sent  # type: ignore[attr-defined]
    finally:
        await pool.close()


async def test_a_transaction_left_open_is_rolled_back_on_return(
    settings: ServiceSettings,
) -> None:
    pool = await create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        await pool.execute("CREATE TABLE IF NOT EXISTS pool_probe (n int)")
        async with pool.acquire() as conn:
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO pool_probe VALUES (1)")
        async with pool.acquire() as again:
            assert not again.is_in_transaction()
            assert await again.fetchval("SELECT count(*) FROM pool_probe") == 0
        await pool.execute("DROP TABLE pool_probe")
    finally:
        await pool.close()
