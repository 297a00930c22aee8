"""Queries of the attribution service."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.attribution.policy import Click


async def get_click(conn: asyncpg.Connection | asyncpg.Pool, click_id: UUID) -> Click | None:
    row = await conn.fetchrow(
        "SELECT click_id, program_id, participant_id, clicked_at, attributable "
        "FROM clicks WHERE click_id = $1",
        click_id,
    )
    return Click(**dict(row)) if row else None


async def participant_by_code(conn: asyncpg.Connection, program_id: UUID, code: str) -> UUID | None:
    return await conn.fetchval(
        "SELECT participant_id FROM participants WHERE code = $1 AND program_id = $2",
        code,
        program_id,
    )


async def versions(conn: asyncpg.Connection, program_id: UUID) -> list[tuple[int, datetime]]:
    rows = await conn.fetch(
        "SELECT version, effective_from FROM program_versions WHERE program_id = $1", program_id
    )
    return [(r["version"], r["effective_from"]) for r in rows]


async def window_days(conn: asyncpg.Connection, program_id: UUID) -> int:
    definition = await conn.fetchval(
        "SELECT definition FROM program_versions WHERE program_id = $1 "
        "AND effective_from <= now() ORDER BY version DESC LIMIT 1",
        program_id,
    )
    return int(((definition or {}).get("attribution") or {}).get("window_days", 90))


async def insert_signup(conn: asyncpg.Connection, values: dict[str, Any]) -> bool:
    inserted = await conn.fetchval(
        "INSERT INTO signups (id, program_id, customer_id, referrer_id, click_id, attributed, "
        "reason, signed_up_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
        "ON CONFLICT (program_id, customer_id) DO NOTHING RETURNING true",
        values["id"],
        values["program_id"],
        values["customer_id"],
        values["referrer_id"],
        values["click_id"],
        values["attributed"],
        values["reason"],
        values["signed_up_at"],
    )
    return bool(inserted)


async def get_signup(
    conn: asyncpg.Connection, program_id: UUID, customer_id: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM signups WHERE program_id = $1 AND customer_id = $2",
        program_id,
        customer_id,
    )


async def get_conversion(
    conn: asyncpg.Connection, program_id: UUID, order_id: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM conversions WHERE program_id = $1 AND order_id = $2", program_id, order_id
    )


async def insert_conversion(conn: asyncpg.Connection, values: dict[str, Any]) -> bool:
    inserted = await conn.fetchval(
        "INSERT INTO conversions (id, signup_id, program_id, order_id, amount, currency, "
        "converted_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
        "ON CONFLICT (program_id, order_id) DO NOTHING RETURNING true",
        values["id"],
        values["signup_id"],
        values["program_id"],
        values["order_id"],
        values["amount"],
        values["currency"],
        values["converted_at"],
    )
    return bool(inserted)
