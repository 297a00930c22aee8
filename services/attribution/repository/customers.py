"""Queries of imported existing customers (``imported_customers``: keyed hashes only)."""

from __future__ import annotations

from uuid import UUID

import asyncpg


async def insert_customers(
    conn: asyncpg.Connection, program_id: UUID, import_id: UUID, hashes: list[str]
) -> int:
    """Record these customers of the program; how many were new (the others were known)."""
    inserted = await conn.fetchval(
        "WITH added AS (INSERT INTO imported_customers (program_id, customer_hash, import_id) "
        "SELECT $1, h, $2 FROM unnest($3::text[]) AS h ORDER BY h "
        "ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) FROM added",
        program_id,
        import_id,
        hashes,
    )
    return int(inserted)


async def is_imported(conn: asyncpg.Connection, program_id: UUID, customer_hash: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT true FROM imported_customers WHERE program_id = $1 AND customer_hash = $2",
            program_id,
            customer_hash,
        )
    )
