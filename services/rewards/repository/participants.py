"""Which program each participant belongs to (a read model of ``participant.enrolled``)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

Executor = asyncpg.Connection | asyncpg.Pool


async def insert(conn: asyncpg.Connection, participant_id: UUID, program_id: UUID) -> None:
    await conn.execute(
        "INSERT INTO participants (participant_id, program_id) VALUES ($1, $2) "
        "ON CONFLICT DO NOTHING",
        participant_id,
        program_id,
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
