"""Coupon pools (a code is handed out at most once) and redemptions of a balance."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg


async def claim_coupon(
    conn: asyncpg.Connection, program_id: UUID, reward_id: UUID, now: datetime
) -> str | None:
    """Give the reward the pool's next free code; None when the pool is empty. Concurrent
    claims skip each other's rows instead of waiting on them."""
    return await conn.fetchval(
        "UPDATE coupon_codes SET reward_id = $1, claimed_at = $3 WHERE id = ("
        "  SELECT id FROM coupon_codes WHERE program_id = $2 AND reward_id IS NULL "
        "  ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
        ") RETURNING code",
        reward_id,
        program_id,
        now,
    )


async def add_coupons(conn: asyncpg.Connection, program_id: UUID, codes: list[str]) -> int:
    """Add codes to the pool (one already there is not added twice); returns how many."""
    added = await conn.fetchval(
        "WITH ins AS (INSERT INTO coupon_codes (program_id, code) "
        "SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING RETURNING 1) "
        "SELECT count(*) FROM ins",
        program_id,
        codes,
    )
    return int(added)


async def coupons_left(conn: asyncpg.Connection, program_id: UUID) -> int:
    available = await conn.fetchval(
        "SELECT count(*) FROM coupon_codes WHERE program_id = $1 AND reward_id IS NULL",
        program_id,
    )
    return int(available)


async def insert_redemption(
    conn: asyncpg.Connection,
    redemption_id: UUID,
    program_id: UUID,
    participant_id: UUID,
    amount: int,
    unit: str,
) -> None:
    await conn.execute(
        "INSERT INTO redemptions (id, program_id, participant_id, amount, unit) "
        "VALUES ($1, $2, $3, $4, $5)",
        redemption_id,
        program_id,
        participant_id,
        amount,
        unit,
    )
