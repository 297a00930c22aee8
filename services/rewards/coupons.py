"""A program's coupon pool: codes the company uploads, handed out one per reward
(``lifecycle``)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from services.rewards import repository as repo
from services.rewards.models import CouponsOut


async def add_codes(pool: asyncpg.Pool, program_id: UUID, codes: list[str]) -> CouponsOut:
    """Add codes to the pool; a code already in the pool is not added twice."""
    async with pool.acquire() as conn, conn.transaction():
        added = await repo.payouts.add_coupons(conn, program_id, codes)
        available = await repo.payouts.coupons_left(conn, program_id)
    return CouponsOut(added=added, available=available)
