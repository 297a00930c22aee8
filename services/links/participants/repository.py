"""Queries of participants and their codes."""

from __future__ import annotations

import base64
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


async def codes_of_users(
    conn: Conn, program_id: UUID, external_user_ids: list[str]
) -> dict[str, str]:
    """The code of each of these users who is enrolled in the program."""
    rows = await conn.fetch(
        "SELECT external_user_id, code FROM participants "
        "WHERE program_id = $1 AND external_user_id = ANY($2::text[])",
        program_id,
        external_user_ids,
    )
    return {r["external_user_id"]: r["code"] for r in rows}


async def insert_participants(
    conn: asyncpg.Connection, program_id: UUID, rows: list[dict[str, Any]]
) -> dict[UUID, Any]:
    """Many participants in one statement; {id: created_at} of those inserted (a row whose
    user or code is taken is skipped: the caller tells which)."""
    inserted = await conn.fetch(
        "INSERT INTO participants (id, program_id, external_user_id, code, email, name, locale, "
        "variant, vanity, leaderboard_opt_in, scoreboard_token) "
        "SELECT r.id, $1, r.external_user_id, r.code, r.email, r.name, r.locale, r.variant, "
        "r.vanity, r.leaderboard_opt_in, r.scoreboard_token FROM unnest($2::uuid[], $3::text[], "
        "$4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bool[], $10::bool[], "
        "$11::text[]) WITH ORDINALITY AS r (id, external_user_id, code, email, name, locale, "
        "variant, vanity, leaderboard_opt_in, scoreboard_token, n) ORDER BY r.n "
        "ON CONFLICT DO NOTHING RETURNING id, created_at",
        program_id,
        *(
            [r[c] for r in rows]
            for c in ("id", "external_user_id", "code", "email", "name", "locale", "variant")
        ),
        [r["vanity"] for r in rows],
        [r["leaderboard_opt_in"] for r in rows],
        _tokens(len(rows)),
    )
    return {r["id"]: r["created_at"] for r in inserted}


def _tokens(count: int) -> list[str]:
    """Scoreboard secrets as ``secrets.token_urlsafe(32)`` makes them, from one read of the
    system's randomness for the whole batch."""
    block = secrets.token_bytes(32 * count)
    return [
        base64.urlsafe_b64encode(block[i * 32 : (i + 1) * 32]).rstrip(b"=").decode()
        for i in range(count)
    ]
