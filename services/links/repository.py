"""Queries of the links service."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

_CURRENT_DEFINITION = """
SELECT definition FROM program_versions
WHERE program_id = $1 AND effective_from <= now()
ORDER BY version DESC LIMIT 1
"""


async def insert_program(conn: asyncpg.Connection, program_id: UUID, name: str) -> None:
    await conn.execute(
        "INSERT INTO programs (id, name, current_version) VALUES ($1, $2, 0)", program_id, name
    )


async def add_version(
    conn: asyncpg.Connection, program_id: UUID, effective_from: datetime, definition: dict[str, Any]
) -> int:
    # Lock the program row so two concurrent changes get consecutive versions.
    version: int = await conn.fetchval(
        "UPDATE programs SET current_version = current_version + 1 WHERE id = $1 "
        "RETURNING current_version",
        program_id,
    )
    await conn.execute(
        "INSERT INTO program_versions (program_id, version, effective_from, definition) "
        "VALUES ($1, $2, $3, $4)",
        program_id,
        version,
        effective_from,
        definition,
    )
    return version


async def get_program(
    conn: asyncpg.Connection | asyncpg.Pool, program_id: UUID
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT p.id, p.name, p.status, v.version, v.effective_from, v.definition "
        "FROM programs p JOIN program_versions v "
        "  ON v.program_id = p.id AND v.version = p.current_version "
        "WHERE p.id = $1",
        program_id,
    )


async def find_participant(
    conn: asyncpg.Connection | asyncpg.Pool, program_id: UUID, external_user_id: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM participants WHERE program_id = $1 AND external_user_id = $2",
        program_id,
        external_user_id,
    )


async def get_participant(
    conn: asyncpg.Connection | asyncpg.Pool, participant_id: UUID
) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM participants WHERE id = $1", participant_id)


async def insert_participant(conn: asyncpg.Connection, values: dict[str, Any]) -> bool:
    """False when the code is taken (the caller draws another)."""
    inserted = await conn.fetchval(
        "INSERT INTO participants (id, program_id, external_user_id, code, email, name, locale) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (code) DO NOTHING RETURNING true",
        values["id"],
        values["program_id"],
        values["external_user_id"],
        values["code"],
        values["email"],
        values["name"],
        values["locale"],
    )
    return bool(inserted)


async def resolve_code(pool: asyncpg.Pool, code: str) -> asyncpg.Record | None:
    """What the redirect needs for a code: one indexed lookup plus the version in force."""
    row = await pool.fetchrow(
        "SELECT pa.id AS participant_id, pa.program_id, pr.status "
        "FROM participants pa JOIN programs pr ON pr.id = pa.program_id WHERE pa.code = $1",
        code,
    )
    if row is None:
        return None
    definition = await pool.fetchval(_CURRENT_DEFINITION, row["program_id"])
    return {**dict(row), "definition": definition}  # type: ignore[return-value]
