"""Reads of one participant's support story: links' own participant row and the read models
(``rm_*``) about them. Every query of the story lives here, named."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from services.links.insights.repository import Conn

_PARTICIPANT = """
SELECT pa.id, pa.program_id, pa.external_user_id, pa.code, pa.name, pa.locale, pa.variant,
       coalesce(rp.enrolled_at, pa.created_at) AS enrolled_at, pa.erased_at,
       pa.leaderboard_opt_in
FROM participants pa LEFT JOIN rm_participants rp ON rp.participant_id = pa.id
WHERE pa.id = $1 AND pa.program_id = $2
"""
_REFERRED_BY = """
SELECT referrer_id FROM rm_referrals
WHERE program_id = $1 AND referee_customer_id = $2
ORDER BY signed_up_at NULLS LAST, referral_id LIMIT 1
"""
_CLICK_TOTALS = """
SELECT coalesce(sum(clicks), 0) AS clicks, coalesce(sum(attributable), 0) AS attributable,
       coalesce(sum(invites), 0) AS invites
FROM rm_clicks_daily WHERE participant_id = $1
"""
_CLICK_DAYS = """
SELECT day, clicks, attributable, invites FROM rm_clicks_daily
WHERE participant_id = $1 ORDER BY day DESC LIMIT $2
"""
_SHARES = """
SELECT share_id, channel, shared_at FROM rm_shares
WHERE participant_id = $1 ORDER BY shared_at DESC, share_id LIMIT $2
"""
_SIGNUPS = """
SELECT referral_id, referee_customer_id, status, status_at, signed_up_at, flagged_at,
       rejected_at
FROM rm_referral_states WHERE referrer_id = $1
ORDER BY coalesce(signed_up_at, flagged_at, rejected_at) DESC NULLS LAST, referral_id
LIMIT $2
"""
_RULES = """
SELECT referral_id, decision, rule, action, shadow, reason FROM rm_referral_rules
WHERE referral_id = ANY($1::uuid[]) ORDER BY referral_id, decision, rule
"""
_CONVERSIONS = """
SELECT conversion_id, referral_id, sequence, order_amount AS amount, currency, converted_at,
       program_version, refunded, reversed_at
FROM rm_conversions WHERE referral_id = ANY($1::uuid[])
ORDER BY referral_id, sequence, converted_at NULLS LAST, conversion_id
"""
_REWARDS = """
SELECT reward_id, referral_id, conversion_id, side, recipient, rule, perk, value AS amount,
       unit, state, program_version, created_at, available_at, issued_time AS issued_at,
       reversed_at, reversal_kind, reversed_amount, failed_at, failure_reason
FROM rm_reward_states
WHERE referrer_id = $1 OR (program_id = $2 AND side = 'referee' AND recipient = $3)
ORDER BY coalesce(created_at, issued_time, failed_at, reversed_at) DESC NULLS LAST, reward_id
LIMIT $4
"""
_MILESTONES = """
SELECT threshold, reached_at, perk, amount, unit FROM rm_milestones
WHERE program_id = $1 AND referrer_id = $2 ORDER BY threshold
"""


async def participant(conn: Conn, program_id: UUID, participant_id: UUID) -> asyncpg.Record | None:
    """The participant, if they belong to this program."""
    return await conn.fetchrow(_PARTICIPANT, participant_id, program_id)


async def referred_by(conn: Conn, program_id: UUID, customer_id: str) -> UUID | None:
    """The referrer of the referral whose referee is this customer id, if any."""
    return await conn.fetchval(_REFERRED_BY, program_id, customer_id)  # type: ignore[no-any-return]


async def click_totals(conn: Conn, participant_id: UUID) -> asyncpg.Record:
    row = await conn.fetchrow(_CLICK_TOTALS, participant_id)
    assert row is not None
    return row


async def click_days(conn: Conn, participant_id: UUID, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(_CLICK_DAYS, participant_id, limit)


async def shares(conn: Conn, participant_id: UUID, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(_SHARES, participant_id, limit)


async def signups(conn: Conn, referrer_id: UUID, limit: int) -> list[asyncpg.Record]:
    """The referrals a participant made, newest first, with their state."""
    return await conn.fetch(_SIGNUPS, referrer_id, limit)


async def decision_rules(conn: Conn, referral_ids: list[UUID]) -> list[asyncpg.Record]:
    return await conn.fetch(_RULES, referral_ids)


async def conversions(conn: Conn, referral_ids: list[UUID]) -> list[asyncpg.Record]:
    return await conn.fetch(_CONVERSIONS, referral_ids)


async def rewards(
    conn: Conn, program_id: UUID, participant_id: UUID, customer_id: str, limit: int
) -> list[asyncpg.Record]:
    """Both sides of the participant's referrals, and the referee-side rewards addressed to
    their user id (as a friend someone else referred)."""
    return await conn.fetch(_REWARDS, participant_id, program_id, customer_id, limit)


async def milestones(conn: Conn, program_id: UUID, participant_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(_MILESTONES, program_id, participant_id)


_FIND = """
SELECT id FROM participants
WHERE program_id = $1 AND (id::text = $2 OR external_user_id = $2 OR lower(code) = lower($2))
ORDER BY (id::text = $2) DESC, (external_user_id = $2) DESC LIMIT 1
"""


async def find_participant(conn: Conn, program_id: UUID, text: str) -> UUID | None:
    """The participant of this program named by its id, the company's user id or its code."""
    return await conn.fetchval(_FIND, program_id, text.strip())  # type: ignore[no-any-return]
