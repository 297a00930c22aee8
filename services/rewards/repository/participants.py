"""Which program each participant belongs to (a read model of ``participant.enrolled``)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

Executor = asyncpg.Connection | asyncpg.Pool


async def insert(
    conn: asyncpg.Connection,
    participant_id: UUID,
    program_id: UUID,
    customer_hash: str | None = None,
) -> None:
    """Record the participant (a conversion may have recorded them first: the enrolment then
    adds their hashed customer id)."""
    await conn.execute(
        "INSERT INTO participants (participant_id, program_id, customer_hash) "
        "VALUES ($1, $2, $3) ON CONFLICT (participant_id) DO UPDATE "
        "SET customer_hash = coalesce(participants.customer_hash, EXCLUDED.customer_hash)",
        participant_id,
        program_id,
        customer_hash,
    )


async def customer_hash(conn: Executor, participant_id: UUID) -> str | None:
    """The SHA-256 of the participant's own customer id (known from their enrolment)."""
    return await conn.fetchval(
        "SELECT customer_hash FROM participants WHERE participant_id = $1", participant_id
    )


async def belongs(conn: Executor, participant_id: UUID, program_id: UUID) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM participants "
            "WHERE participant_id = $1 AND program_id = $2)",
            participant_id,
            program_id,
        )
    )
