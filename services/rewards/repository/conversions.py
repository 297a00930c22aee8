"""Conversions received (rewarded, waiting for their program version, or reversed), the
refunds received, and erased participants."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from services.rewards.repository.locks import REFERRER_LOCK_SQL, referrer_lock_key
from shared.contracts import ReferralConverted, ReferralReversed

Executor = asyncpg.Connection | asyncpg.Pool


async def insert_locking_referrer(
    conn: asyncpg.Connection, event: ReferralConverted, traceparent: str | None
) -> asyncpg.Record | None:
    """Record a conversion as ``awaiting_program``; None when it was recorded before.
    The per-referrer lock (see ``locks.lock_referrer``) is taken by the insert itself: one
    round trip, and the lock is held before anything of the referrer's history is read.
    The referrer is recorded as the program's participant in the same statement: the
    conversion can arrive before the enrolment."""
    return await conn.fetchrow(
        "WITH member AS (INSERT INTO participants (participant_id, program_id) "
        "VALUES ($4, $3) ON CONFLICT DO NOTHING) "
        "INSERT INTO conversions (conversion_id, referral_id, program_id, referrer_id, "
        "referee_customer_id, order_id, amount, currency, converted_at, program_version, status, "
        "variant, sequence, traceparent) "
        "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'awaiting_program', $11, $12, $14 "
        f"FROM (SELECT {REFERRER_LOCK_SQL.format(param='$13')}) AS lock "
        "ON CONFLICT DO NOTHING RETURNING *",
        event.conversion_id,
        event.referral_id,
        event.program_id,
        event.referrer_id,
        event.referee_customer_id,
        event.order_id,
        event.amount,
        event.currency,
        event.converted_at,
        event.program_version,
        event.variant,
        event.sequence,
        referrer_lock_key(event.program_id, event.referrer_id),
        traceparent,
    )


async def owner(conn: asyncpg.Connection, conversion_id: UUID) -> asyncpg.Record | None:
    """``program_id`` and ``referrer_id`` of a conversion (to lock the referrer first)."""
    return await conn.fetchrow(
        "SELECT program_id, referrer_id FROM conversions WHERE conversion_id = $1",
        conversion_id,
    )


async def get_for_update(conn: asyncpg.Connection, conversion_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM conversions WHERE conversion_id = $1 FOR UPDATE", conversion_id
    )


async def awaiting_program(conn: asyncpg.Connection, program_id: UUID) -> list[UUID]:
    """The program's conversions that wait for a version, oldest first."""
    rows = await conn.fetch(
        "SELECT conversion_id FROM conversions "
        "WHERE program_id = $1 AND status = 'awaiting_program' ORDER BY converted_at",
        program_id,
    )
    return [r["conversion_id"] for r in rows]


async def set_status(
    conn: asyncpg.Connection, conversion_id: UUID, status: str, version: int
) -> None:
    await conn.execute(
        "UPDATE conversions SET status = $2, program_version = $3 WHERE conversion_id = $1",
        conversion_id,
        status,
        version,
    )


async def mark_reversed(conn: asyncpg.Connection, conversion_id: UUID) -> None:
    """A rewarded conversion was fully refunded (it no longer counts as converted)."""
    await conn.execute(
        "UPDATE conversions SET status = 'reversed' WHERE conversion_id = $1 "
        "AND status = 'rewarded'",
        conversion_id,
    )


async def converted_count(conn: Executor, program_id: UUID, referrer_id: UUID) -> int:
    """Distinct referrals of the referrer whose conversion was rewarded and not reversed."""
    count = await conn.fetchval(
        "SELECT count(DISTINCT referral_id) FROM conversions "
        "WHERE program_id = $1 AND referrer_id = $2 AND status = 'rewarded'",
        program_id,
        referrer_id,
    )
    return int(count)


async def latest_variant(conn: Executor, program_id: UUID, referrer_id: UUID) -> str | None:
    """The experiment variant of the referrer's latest conversion."""
    return await conn.fetchval(
        "SELECT variant FROM conversions WHERE program_id = $1 AND referrer_id = $2 "
        "ORDER BY converted_at DESC LIMIT 1",
        program_id,
        referrer_id,
    )


async def insert_reversal(conn: asyncpg.Connection, event: ReferralReversed) -> None:
    """Keep the refund, even one that arrives before its conversion."""
    await conn.execute(
        "INSERT INTO reversals (refund_id, conversion_id, full_reversal, refunded_amount, "
        "reversed_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        event.refund_id,
        event.conversion_id,
        event.full,
        event.refunded_amount,
        event.reversed_at,
    )


async def partly_refunded(conn: asyncpg.Connection, conversion_id: UUID) -> int:
    """The sum of the partial refunds of a conversion."""
    value = await conn.fetchval(
        "SELECT coalesce(sum(refunded_amount), 0) FROM reversals "
        "WHERE conversion_id = $1 AND NOT full_reversal",
        conversion_id,
    )
    return int(value)


async def record_erasure(
    conn: asyncpg.Connection, participant_id: UUID, erased_at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO erased_participants (participant_id, erased_at) VALUES ($1, $2) "
        "ON CONFLICT DO NOTHING",
        participant_id,
        erased_at,
    )


async def referees_in_clear(
    conn: asyncpg.Connection, program_id: UUID, referrer_id: UUID
) -> list[str]:
    """The customer ids, not yet replaced by their hash, of the people the referrer referred."""
    rows = await conn.fetch(
        "SELECT DISTINCT referee_customer_id FROM conversions "
        "WHERE program_id = $1 AND referrer_id = $2 AND referee_customer_id NOT LIKE 'erased:%'",
        program_id,
        referrer_id,
    )
    return [r["referee_customer_id"] for r in rows]


async def replace_referee(
    conn: asyncpg.Connection, program_id: UUID, referrer_id: UUID, clear: str, hashed: str
) -> None:
    """Replace a referee's customer id in the referrer's conversions and referee rewards."""
    await conn.execute(
        "UPDATE conversions SET referee_customer_id = $3 "
        "WHERE program_id = $1 AND referrer_id = $2 AND referee_customer_id = $4",
        program_id,
        referrer_id,
        hashed,
        clear,
    )
    await conn.execute(
        "UPDATE rewards SET recipient = $3 WHERE program_id = $1 AND referrer_id = $2 "
        "AND side = 'referee' AND recipient = $4",
        program_id,
        referrer_id,
        hashed,
        clear,
    )


async def revenue(conn: Executor, program_id: UUID) -> list[asyncpg.Record]:
    """Per variant and currency: the conversions rewarded and not fully refunded, and their
    amounts net of partial refunds."""
    return await conn.fetch(
        "SELECT c.variant, c.currency, count(*) AS conversions, "
        "sum(greatest(0, c.amount - coalesce(r.refunded, 0))) AS revenue "
        "FROM conversions c LEFT JOIN (SELECT conversion_id, sum(refunded_amount) AS refunded "
        "FROM reversals WHERE NOT full_reversal GROUP BY conversion_id) r USING (conversion_id) "
        "WHERE c.program_id = $1 AND c.status = 'rewarded' GROUP BY c.variant, c.currency",
        program_id,
    )
