"""Queries of the links service."""

from __future__ import annotations

import secrets
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


async def find_participant(
    conn: Conn, program_id: UUID, external_user_id: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM participants WHERE program_id = $1 AND external_user_id = $2",
        program_id,
        external_user_id,
    )


async def get_participant(conn: Conn, participant_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM participants WHERE id = $1", participant_id)


async def code_taken(conn: Conn, code: str) -> bool:
    return bool(
        await conn.fetchval("SELECT true FROM participants WHERE lower(code) = lower($1)", code)
    )


async def insert_participant(conn: asyncpg.Connection, values: dict[str, Any]) -> bool:
    """False when the code is taken (the caller draws another, or refuses a vanity code)."""
    inserted = await conn.fetchval(
        "INSERT INTO participants (id, program_id, external_user_id, code, email, name, locale, "
        "variant, vanity, leaderboard_opt_in, scoreboard_token) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
        "ON CONFLICT DO NOTHING RETURNING true",
        values["id"],
        values["program_id"],
        values["external_user_id"],
        values["code"],
        values["email"],
        values["name"],
        values["locale"],
        values["variant"],
        values["vanity"],
        values.get("leaderboard_opt_in", False),
        # The public scoreboard's secret: 32 random bytes.
        values.get("scoreboard_token") or secrets.token_urlsafe(32),
    )
    return bool(inserted)


async def erase_participant(
    conn: asyncpg.Connection, participant_id: UUID
) -> asyncpg.Record | None:
    """Drop the personal data; the code stays reserved (so nobody can take the link over)
    but stops working."""
    return await conn.fetchrow(
        "UPDATE participants SET email = NULL, name = NULL, "
        "external_user_id = 'erased:' || id::text, erased_at = now() "
        "WHERE id = $1 AND erased_at IS NULL RETURNING *",
        participant_id,
    )


async def resolve_code(pool: Conn, code: str) -> asyncpg.Record | None:
    """What the redirect needs for a code: one indexed look-up with the version in force and
    the time until a scheduled version takes over."""
    return await pool.fetchrow(
        "SELECT pa.id AS participant_id, pa.program_id, pa.code, pa.erased_at IS NULL AS active, "
        "       v.status, v.definition, "
        "       extract(epoch FROM (SELECT min(n.effective_from) FROM program_versions n "
        "          WHERE n.program_id = pa.program_id AND n.effective_from > now() "
        "            AND n.version > coalesce(v.version, 0)) - now())::float8 "
        "         AS seconds_to_next_version "
        "FROM participants pa "
        "LEFT JOIN LATERAL ("
        "  SELECT version, status, definition FROM program_versions "
        "  WHERE program_id = pa.program_id AND effective_from <= now() "
        "  ORDER BY version DESC LIMIT 1"
        ") v ON true "
        "WHERE lower(pa.code) = lower($1)",
        code,
    )
