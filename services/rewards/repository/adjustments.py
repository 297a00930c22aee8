"""Manual adjustments by an operator (goodwill grants and corrections), and the id of the key
that made one."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from shared.http.auth import hash_key


async def insert(
    conn: asyncpg.Connection,
    adjustment_id: UUID,
    program_id: UUID,
    participant_id: UUID,
    kind: str,
    amount: int,
    unit: str,
    reason: str,
    actor: str,
    reference: str | None,
) -> asyncpg.Record | None:
    """The new adjustment; None when the program already has one with this ``reference``."""
    return await conn.fetchrow(
        "INSERT INTO adjustments (id, program_id, participant_id, kind, amount, unit, reason, "
        "actor, reference) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
        "ON CONFLICT (program_id, reference) DO NOTHING RETURNING *",
        adjustment_id,
        program_id,
        participant_id,
        kind,
        amount,
        unit,
        reason,
        actor,
        reference,
    )


async def by_reference(
    conn: asyncpg.Connection, program_id: UUID, reference: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM adjustments WHERE program_id = $1 AND reference = $2",
        program_id,
        reference,
    )


async def key_id(conn: asyncpg.Connection | asyncpg.Pool, secret: str) -> str | None:
    """The id of a program key known here, from its secret."""
    return await conn.fetchval("SELECT key_id FROM api_keys WHERE key_hash = $1", hash_key(secret))
