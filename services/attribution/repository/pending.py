"""Queries of pending signups (waiting for their click or code) and of the purchases and
refunds held while they wait."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

# Row locks: a consumer waits for a signup being decided elsewhere and then sees it decided
# (the status is checked again after the wait); the sweep skips rows locked by anyone.


async def for_clicks(conn: asyncpg.Connection, click_ids: list[UUID]) -> list[asyncpg.Record]:
    """Pending signups naming one of ``click_ids``, locked."""
    return await conn.fetch(
        "SELECT * FROM signups WHERE status = 'pending' AND click_id = ANY($1::uuid[]) "
        "ORDER BY signed_up_at, id FOR UPDATE",
        click_ids,
    )


async def for_code(conn: asyncpg.Connection, program_id: UUID, code: str) -> list[asyncpg.Record]:
    """Pending signups of the program that typed ``code`` (in any case), locked."""
    return await conn.fetch(
        "SELECT * FROM signups WHERE status = 'pending' AND program_id = $1 "
        "AND click_id IS NULL AND upper(referral_code) = upper($2) "
        "ORDER BY signed_up_at, id FOR UPDATE",
        program_id,
        code,
    )


async def claim_arrived(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """Pending signups whose click or code is known by now (one recorded while the event
    that decides it was being stored concurrently), locked, skipping locked ones."""
    return await conn.fetch(
        "SELECT s.* FROM signups s WHERE s.status = 'pending' AND ("
        " (s.click_id IS NOT NULL"
        "  AND EXISTS (SELECT 1 FROM clicks c WHERE c.click_id = s.click_id))"
        " OR (s.click_id IS NULL AND EXISTS (SELECT 1 FROM participants p"
        "     WHERE p.program_id = s.program_id AND upper(p.code) = upper(s.referral_code))))"
        " ORDER BY s.signed_up_at, s.id LIMIT $1 FOR UPDATE OF s SKIP LOCKED",
        limit,
    )


async def claim_overdue(
    conn: asyncpg.Connection, now: datetime, limit: int
) -> list[asyncpg.Record]:
    """Pending signups whose waiting time is over, locked, skipping locked ones."""
    return await conn.fetch(
        "SELECT * FROM signups WHERE status = 'pending' AND pending_until <= $1 "
        "ORDER BY pending_until, id LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )


async def set_decided(conn: asyncpg.Connection, signup: dict[str, Any]) -> bool:
    """Write the decision of a pending signup; False if it was not pending any more."""
    done = await conn.fetchval(
        "UPDATE signups SET referrer_id = $2, candidate_referrer_id = $3, attributed = $4, "
        "reason = $5, status = $6, program_version = $7, decided_at = $8, "
        "pending_until = NULL WHERE id = $1 AND status = 'pending' RETURNING true",
        signup["id"],
        signup["referrer_id"],
        signup["candidate_referrer_id"],
        signup["attributed"],
        signup["reason"],
        signup["status"],
        signup["program_version"],
        signup["decided_at"],
    )
    return bool(done)


async def still_pending(conn: asyncpg.Connection, signup_id: UUID) -> bool:
    """Lock the signup and tell whether it is still pending (a decision in flight is waited
    for, so nothing can be held after its held calls were applied)."""
    status = await conn.fetchval("SELECT status FROM signups WHERE id = $1 FOR UPDATE", signup_id)
    return bool(status == "pending")


# Held purchases and refunds.


async def hold(
    conn: asyncpg.Connection,
    *,
    program_id: UUID,
    signup_id: UUID,
    kind: str,
    natural_key: str,
    order_id: str,
    body: dict[str, Any],
    received_at: datetime,
) -> asyncpg.Record:
    """Store a held call; the one stored first when the same natural key comes again."""
    row = await conn.fetchrow(
        "INSERT INTO held_tracking (program_id, signup_id, kind, natural_key, order_id, body, "
        "received_at) VALUES ($1, $2, $3, $4, $5, $6, $7) "
        "ON CONFLICT (program_id, kind, natural_key) DO NOTHING RETURNING *",
        program_id,
        signup_id,
        kind,
        natural_key,
        order_id,
        body,
        received_at,
    )
    if row is not None:
        return row
    existing = await conn.fetchrow(
        "SELECT * FROM held_tracking WHERE program_id = $1 AND kind = $2 AND natural_key = $3",
        program_id,
        kind,
        natural_key,
    )
    assert existing is not None
    return existing


async def held_conversion_of_order(
    conn: asyncpg.Connection, program_id: UUID, order_id: str
) -> asyncpg.Record | None:
    """A held purchase of this order not applied yet."""
    return await conn.fetchrow(
        "SELECT * FROM held_tracking WHERE program_id = $1 AND kind = 'conversion' "
        "AND natural_key = $2 AND applied_at IS NULL",
        program_id,
        order_id,
    )


async def held_of(conn: asyncpg.Connection, signup_id: UUID) -> list[asyncpg.Record]:
    """What was held for a signup and not applied yet, in the order it arrived."""
    return await conn.fetch(
        "SELECT * FROM held_tracking WHERE signup_id = $1 AND applied_at IS NULL ORDER BY id",
        signup_id,
    )


async def mark_applied(conn: asyncpg.Connection, held_id: int, outcome: str, at: datetime) -> None:
    await conn.execute(
        "UPDATE held_tracking SET applied_at = $3, outcome = $2 WHERE id = $1", held_id, outcome, at
    )
