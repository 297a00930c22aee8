"""Database access: one asyncpg pool per service, each service on its own database."""

from __future__ import annotations

import json

import asyncpg


async def _init_connection(conn: asyncpg.Connection) -> None:
    # JSON columns come back as Python objects and go in from dicts/lists.
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a connection's return to the pool runs after asyncpg has rolled back an open
    transaction and dropped its listeners: nothing. asyncpg's default sends ``RESET ALL``,
    ``UNLISTEN *``, ``CLOSE ALL`` and ``pg_advisory_unlock_all()``, a round trip and a
    transaction per request or batch, for session state the services never leave on a pooled
    connection (no ``SET``, no ``LISTEN``, only transaction-scoped locks and cursors)."""


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, reset=_keep_session
    )
    assert pool is not None
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn
