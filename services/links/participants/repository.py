"""Queries of participants and their codes."""

from __future__ import annotations

import secrets
from typing import Any
from uuid import UUID

import asyncpg

Conn = asyncpg.Connection | asyncpg.Pool


async def lock_user(conn: asyncpg.Connection, program_id: UUID, external_user_id: str) -> None:
    """Serialise enrolments of one user (until the transaction ends), so that a concurrent
    duplicate sees the first one."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1))", f"{program_id}:{external_user_id}"
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


async def find_code(conn: Conn, code: str) -> asyncpg.Record | None:
    """A code as stored (any case matches) and whether its participant is not erased."""
    return await conn.fetchrow(
        "SELECT code, erased_at IS NULL AS active FROM participants WHERE lower(code) = lower($1)",
        code,
    )
