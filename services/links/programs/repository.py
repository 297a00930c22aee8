"""Queries of programs and their versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

Conn = asyncpg.Connection | asyncpg.Pool

# The version in force at a time is the highest version whose effective_from has come: a
# newer version supersedes older ones from its effective_from on.
_IN_FORCE = """
SELECT version, effective_from, status, definition FROM program_versions
WHERE program_id = $1 AND effective_from <= $2
ORDER BY version DESC LIMIT 1
"""
_PROGRAM = """
SELECT p.id, p.name, p.current_version AS latest_version, p.created_at,
       v.version, v.effective_from, v.status, v.definition
FROM programs p
LEFT JOIN LATERAL (
    SELECT version, effective_from, status, definition FROM program_versions
    WHERE program_id = p.id AND effective_from <= now()
    ORDER BY version DESC LIMIT 1
) v ON true
WHERE p.id = $1
"""


async def insert_program(conn: asyncpg.Connection, program_id: UUID, name: str) -> None:
    await conn.execute(
        "INSERT INTO programs (id, name, current_version) VALUES ($1, $2, 0)", program_id, name
    )


async def lock_program(conn: asyncpg.Connection, program_id: UUID) -> asyncpg.Record | None:
    """Lock the program row (versions are numbered under this lock)."""
    return await conn.fetchrow(
        "SELECT id, name, current_version FROM programs WHERE id = $1 FOR UPDATE", program_id
    )


async def add_version(
    conn: asyncpg.Connection,
    program_id: UUID,
    effective_from: datetime,
    definition: dict[str, Any],
    status: str = "active",
) -> int:
    # The row lock makes two concurrent changes get consecutive versions.
    version: int = await conn.fetchval(
        "UPDATE programs SET current_version = current_version + 1, status = $2 WHERE id = $1 "
        "RETURNING current_version",
        program_id,
        status,
    )
    await conn.execute(
        "INSERT INTO program_versions (program_id, version, effective_from, definition, status) "
        "VALUES ($1, $2, $3, $4, $5)",
        program_id,
        version,
        effective_from,
        definition,
        status,
    )
    return version


async def get_program(conn: Conn, program_id: UUID) -> asyncpg.Record | None:
    """The program with the version in force now (version fields are NULL if every version
    is scheduled for later)."""
    return await conn.fetchrow(_PROGRAM, program_id)


async def get_version(conn: Conn, program_id: UUID, version: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT v.version, v.effective_from, v.status, v.definition, v.created_at, p.name "
        "FROM program_versions v JOIN programs p ON p.id = v.program_id "
        "WHERE v.program_id = $1 AND v.version = $2",
        program_id,
        version,
    )


async def in_force(conn: Conn, program_id: UUID, at: datetime) -> asyncpg.Record | None:
    return await conn.fetchrow(_IN_FORCE, program_id, at)


async def list_versions(
    conn: Conn, program_id: UUID, after: int, limit: int
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT version, effective_from, status, definition, created_at FROM program_versions "
        "WHERE program_id = $1 AND version > $2 ORDER BY version LIMIT $3",
        program_id,
        after,
        limit,
    )


async def program_exists(conn: Conn, program_id: UUID) -> bool:
    return bool(await conn.fetchval("SELECT true FROM programs WHERE id = $1", program_id))


async def version_exists(conn: Conn, program_id: UUID, version: int) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT true FROM program_versions WHERE program_id = $1 AND version = $2",
            program_id,
            version,
        )
    )
