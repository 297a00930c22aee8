"""Reads of the analytics read models (``rm_*``), joined with links' own programs, versions and
participants for names, codes, tokens and definitions (never with another service's data);
and the NPS answers. Every query of the insights lives here, named."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

Conn = asyncpg.Connection | asyncpg.Pool

# --- programs and their definitions --------------------------------------------------------

_DEFINITION_NOW = """
SELECT definition FROM program_versions WHERE program_id = $1
ORDER BY (effective_from <= now()) DESC,
         CASE WHEN effective_from <= now() THEN version ELSE -version END DESC
LIMIT 1
"""


async def definition_now(conn: Conn, program_id: UUID) -> dict[str, Any]:
    """The definition in force now, or the first version's before any is in force."""
    return dict(await conn.fetchval(_DEFINITION_NOW, program_id) or {})


async def definition_of(conn: Conn, program_id: UUID, version: int) -> dict[str, Any]:
    row = await conn.fetchval(
        "SELECT definition FROM program_versions WHERE program_id = $1 AND version = $2",
        program_id,
        version,
    )
    return dict(row or {})


# --- participant scoreboard and leaderboard ---------------------------------------------------

_SCOREBOARD_PARTICIPANT = """
SELECT pa.id, pa.program_id, pa.code, pa.locale, pa.name, pa.variant, pa.leaderboard_opt_in,
       p.name AS program_name
FROM participants pa JOIN programs p ON p.id = pa.program_id
WHERE pa.scoreboard_token = $1 AND pa.erased_at IS NULL
"""
_PARTICIPANT_COUNTS = """
SELECT coalesce((SELECT sum(attributable) FROM rm_clicks_daily WHERE participant_id = $1), 0)
           AS clicks,
       coalesce((SELECT sum(invites) FROM rm_clicks_daily WHERE participant_id = $1), 0)
           AS unique_clicks,
       (SELECT count(*) FROM rm_referrals WHERE referrer_id = $1 AND signed_up_at IS NOT NULL)
           AS signups,
       (SELECT count(*) FROM rm_referral_states WHERE referrer_id = $1 AND status = 'converted')
           AS conversions,
       (SELECT count(*) FROM rm_pending_referrals r JOIN participants pa
          ON pa.program_id = r.program_id AND upper(r.referral_code) = upper(pa.code)
        WHERE pa.id = $1 AND r.resolved_at IS NULL) AS pending_signups
"""
_FRIENDS = """
SELECT referee_customer_id, referral_id, status, status_at FROM rm_referral_states
WHERE referrer_id = $1 AND status_at IS NOT NULL
ORDER BY status_at DESC, referral_id LIMIT $2
"""
_REWARD_SUMS = """
SELECT unit,
       coalesce(sum(value) FILTER (WHERE state = 'pending'), 0) AS pending,
       coalesce(sum(value) FILTER (WHERE state = 'available'), 0) AS available,
       coalesce(sum(value) FILTER (WHERE state = 'issued'), 0) AS issued,
       coalesce(sum(reversed_amount) FILTER (WHERE state = 'reversed'), 0) AS reversed,
       coalesce(sum(value) FILTER (WHERE state = 'failed'), 0) AS failed
FROM rm_reward_states
WHERE referrer_id = $1 AND side = 'referrer'
GROUP BY unit ORDER BY unit
"""
_LEADERBOARD = """
WITH counts AS (
    SELECT p.participant_id, p.enrolled_at,
           count(r.referral_id) FILTER (WHERE r.status = 'converted') AS converted,
           count(r.referral_id) FILTER (WHERE r.signed_up_at IS NOT NULL) AS signups
    FROM rm_participants p
    LEFT JOIN rm_referral_states r ON r.referrer_id = p.participant_id
    WHERE p.program_id = $1 AND p.enrolled_at IS NOT NULL AND p.erased_at IS NULL
    GROUP BY p.participant_id, p.enrolled_at
), ranked AS (
    SELECT c.*, rank() OVER (ORDER BY converted DESC, signups DESC) AS rank
    FROM counts c WHERE c.converted > 0 OR c.signups > 0 OR c.participant_id = $3
)
SELECT k.participant_id, k.converted, k.signups, k.rank, pa.name, pa.code,
       coalesce(pa.leaderboard_opt_in, false) AS opt_in
FROM ranked k LEFT JOIN participants pa ON pa.id = k.participant_id
WHERE k.rank <= $2 OR k.participant_id = $3
ORDER BY k.rank, k.enrolled_at, k.participant_id
"""


async def scoreboard_participant(conn: Conn, token: str) -> asyncpg.Record | None:
    return await conn.fetchrow(_SCOREBOARD_PARTICIPANT, token)


async def participant_counts(conn: Conn, participant_id: UUID) -> asyncpg.Record:
    row = await conn.fetchrow(_PARTICIPANT_COUNTS, participant_id)
    assert row is not None
    return row


async def friends(conn: Conn, participant_id: UUID, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(_FRIENDS, participant_id, limit)


async def reward_sums(conn: Conn, participant_id: UUID) -> list[asyncpg.Record]:
    return await conn.fetch(_REWARD_SUMS, participant_id)


async def leaderboard(
    conn: Conn, program_id: UUID, limit: int, you: UUID | None
) -> list[asyncpg.Record]:
    return await conn.fetch(_LEADERBOARD, program_id, limit, you)


# --- program analytics ------------------------------------------------------------------------

# Per UTC day in [$2, $3): {day} is the day of {col}.
_DAY = "(({col}) AT TIME ZONE 'UTC')::date"
_DAILY_COUNTS = {
    "enrolled": ("rm_participants", "enrolled_at", ""),
    "shares": ("rm_shares", "shared_at", ""),
    "signups": ("rm_referrals", "signed_up_at", ""),
    "conversions": ("rm_referral_states", "converted_at", "AND status = 'converted'"),
    "rewards_issued": ("rm_reward_states", "issued_time", ""),
}
_DAILY_INVITES = """
SELECT day, sum(invites) AS n FROM rm_clicks_daily
WHERE program_id = $1 AND day >= $2 AND day <= $3 GROUP BY 1
"""
_TOTALS = """
SELECT
  (SELECT count(DISTINCT participant_id) FROM rm_shares
    WHERE program_id = $1 AND shared_at >= $2 AND shared_at < $3) AS sharers,
  (SELECT count(DISTINCT referral_id) FROM rm_reward_states
    WHERE program_id = $1 AND referral_id IS NOT NULL
      AND issued_time >= $2 AND issued_time < $3) AS rewarded,
  (SELECT count(*) FROM rm_referrals
    WHERE program_id = $1 AND flagged_at >= $2 AND flagged_at < $3) AS flagged,
  (SELECT count(*) FROM rm_participants
    WHERE program_id = $1 AND enrolled_at < $3) AS participants,
  (SELECT count(*) FROM rm_pending_referrals
    WHERE program_id = $1 AND resolved_at IS NULL AND signed_up_at >= $2 AND signed_up_at < $3)
    AS pending_signups
"""
_REJECTIONS = """
SELECT reason, count(*) AS n FROM rm_referrals, unnest(reject_rules) AS reason
WHERE program_id = $1 AND rejected_at >= $2 AND rejected_at < $3
GROUP BY reason ORDER BY reason
"""
_REWARD_COST = """
SELECT unit, sum(n) AS n FROM (
    SELECT unit, value AS n FROM rm_reward_states
    WHERE program_id = $1 AND issued_time >= $2 AND issued_time < $3
      AND ($4::uuid[] IS NULL OR referrer_id = ANY($4))
    UNION ALL
    SELECT unit, -reversed_amount FROM rm_rewards
    WHERE program_id = $1 AND reversal_kind = 'clawed_back'
      AND reversed_at >= $2 AND reversed_at < $3
      AND ($4::uuid[] IS NULL OR referrer_id = ANY($4))
) x GROUP BY unit ORDER BY unit
"""

_REFERRED_REVENUE = """
SELECT currency, sum(order_amount - refunded) AS n FROM rm_conversions
WHERE program_id = $1 AND converted_at >= $2 AND converted_at < $3 AND currency IS NOT NULL
  AND ($4::uuid[] IS NULL OR referrer_id = ANY($4))
GROUP BY currency ORDER BY currency
"""


async def daily_counts(
    conn: Conn, series: str, program_id: UUID, start: datetime, end: datetime
) -> dict[date, int]:
    """One of the ``_DAILY_COUNTS`` series: rows per UTC day in [start, end)."""
    table, col, condition = _DAILY_COUNTS[series]
    day = _DAY.format(col=col)
    rows = await conn.fetch(
        f"SELECT {day} AS day, count(*) AS n FROM {table} WHERE program_id = $1 {condition} "
        f"AND {col} >= $2 AND {col} < $3 GROUP BY 1",
        program_id,
        start,
        end,
    )
    return {r["day"]: int(r["n"]) for r in rows}


async def daily_invites(conn: Conn, program_id: UUID, since: date, until: date) -> dict[date, int]:
    rows = await conn.fetch(_DAILY_INVITES, program_id, since, until)
    return {r["day"]: int(r["n"]) for r in rows}


async def range_totals(
    conn: Conn, program_id: UUID, start: datetime, end: datetime
) -> asyncpg.Record:
    row = await conn.fetchrow(_TOTALS, program_id, start, end)
    assert row is not None
    return row


async def rejections(
    conn: Conn, program_id: UUID, start: datetime, end: datetime
) -> dict[str, int]:
    rows = await conn.fetch(_REJECTIONS, program_id, start, end)
    return {r["reason"]: int(r["n"]) for r in rows}


async def reward_cost(
    conn: Conn,
    program_id: UUID,
    start: datetime,
    end: datetime,
    referrers: list[UUID] | None = None,
) -> dict[str, int]:
    """Per unit: what was issued in [start, end) minus what was clawed back in it."""
    rows = await conn.fetch(_REWARD_COST, program_id, start, end, referrers)
    return {r["unit"]: int(r["n"]) for r in rows}


async def referred_revenue(
    conn: Conn,
    program_id: UUID,
    start: datetime,
    end: datetime,
    referrers: list[UUID] | None = None,
) -> dict[str, int]:
    """Per currency: order amounts of the conversions made in [start, end), net of what was
    refunded of them (whenever)."""
    rows = await conn.fetch(_REFERRED_REVENUE, program_id, start, end, referrers)
    return {r["currency"]: int(r["n"]) for r in rows}


# --- experiments ------------------------------------------------------------------------------

_VARIANT_PARTICIPANTS = """
SELECT p.participant_id, coalesce(p.variant, '') AS variant,
       EXISTS (SELECT 1 FROM rm_shares s WHERE s.participant_id = p.participant_id) AS shared,
       coalesce((SELECT sum(invites) FROM rm_clicks_daily c
                 WHERE c.participant_id = p.participant_id), 0) AS invites,
       (SELECT count(*) FROM rm_referrals r
         WHERE r.referrer_id = p.participant_id AND r.signed_up_at IS NOT NULL) AS signups,
       (SELECT count(*) FROM rm_referral_states r
         WHERE r.referrer_id = p.participant_id AND r.status = 'converted') AS conversions
FROM rm_participants p
WHERE p.program_id = $1 AND p.enrolled_at IS NOT NULL
  AND ($2::int IS NULL OR $2 = (
        SELECT max(v.version) FROM program_versions v
        WHERE v.program_id = p.program_id AND v.effective_from <= p.enrolled_at))
"""


async def variant_participants(
    conn: Conn, program_id: UUID, version: int | None
) -> list[asyncpg.Record]:
    """Every participant with their variant and outcomes (of those enrolled while
    ``version`` was in force, if given)."""
    return await conn.fetch(_VARIANT_PARTICIPANTS, program_id, version)


# --- ops console ------------------------------------------------------------------------------

_FUNNEL_ALL_TIME = """
SELECT p.id AS program_id, p.name, p.status,
  (SELECT count(*) FROM rm_participants x WHERE x.program_id = p.id
     AND x.enrolled_at IS NOT NULL) AS enrolled,
  (SELECT count(DISTINCT participant_id) FROM rm_shares x WHERE x.program_id = p.id) AS shared,
  (SELECT coalesce(sum(invites), 0) FROM rm_clicks_daily x WHERE x.program_id = p.id) AS clicked,
  (SELECT count(*) FROM rm_referrals x WHERE x.program_id = p.id
     AND x.signed_up_at IS NOT NULL) AS signed_up,
  (SELECT count(*) FROM rm_referral_states x WHERE x.program_id = p.id
     AND x.status = 'converted') AS converted,
  (SELECT count(DISTINCT referral_id) FROM rm_reward_states x WHERE x.program_id = p.id
     AND x.issued_time IS NOT NULL) AS rewarded
FROM programs p ORDER BY p.created_at, p.id
"""
_REWARD_ISSUES = """
SELECT reward_id, program_id, referrer_id, value AS amount, unit, state, failure_reason,
       failed_at, coalesce(available_at, created_at) AS due
FROM rm_reward_states
WHERE (state = 'failed') OR (state IN ('pending', 'available')
       AND coalesce(available_at, created_at) < $1)
ORDER BY coalesce(failed_at, available_at, created_at), reward_id LIMIT $2
"""


async def program_funnels(conn: Conn) -> list[asyncpg.Record]:
    """Every program with its funnel counts of all time."""
    return await conn.fetch(_FUNNEL_ALL_TIME)


async def reward_issues(conn: Conn, due_before: datetime, limit: int) -> list[asyncpg.Record]:
    """Rewards that failed, or are pending or available since before ``due_before``."""
    return await conn.fetch(_REWARD_ISSUES, due_before, limit)


# --- CSV exports ------------------------------------------------------------------------------

EXPORTS = {
    "referrals": """
SELECT r.referral_id, r.referrer_id, pa.code AS referrer_code,
       r.referee_customer_id AS referee_id, r.variant, r.status, r.signed_up_at, r.flagged_at,
       r.rejected_at, array_to_string(r.reject_rules, ';') AS reject_rules, r.converted_at,
       r.reversed_at, c.purchases, c.order_amount, c.currency
FROM rm_referral_states r
LEFT JOIN participants pa ON pa.id = r.referrer_id
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE x.converted_at IS NOT NULL) AS purchases,
           sum(x.order_amount) AS order_amount, min(x.currency) AS currency
    FROM rm_conversions x WHERE x.referral_id = r.referral_id
) c ON true
WHERE r.program_id = $1
ORDER BY r.signed_up_at NULLS LAST, r.referral_id
""",
    "rewards": """
SELECT reward_id, referrer_id, referral_id, conversion_id, side, recipient, rule, perk, unit,
       value AS amount, state, created_at, available_at, issued_time AS issued_at,
       reversed_at, reversal_kind, reversed_amount, failed_at, failure_reason,
       program_version, variant
FROM rm_reward_states WHERE program_id = $1
ORDER BY created_at NULLS LAST, reward_id
""",
}


def export_cursor(conn: asyncpg.Connection, kind: str, program_id: UUID, prefetch: int) -> Any:
    """A server-side cursor (``async for``) over one export, ``referrals`` or ``rewards``; the
    caller holds a transaction."""
    return conn.cursor(EXPORTS[kind], program_id, prefetch=prefetch)


# --- NPS --------------------------------------------------------------------------------------

_NPS_DAILY = """
SELECT (answered_at AT TIME ZONE 'UTC')::date AS day,
       count(*) FILTER (WHERE score >= 9) AS promoters,
       count(*) FILTER (WHERE score BETWEEN 7 AND 8) AS passives,
       count(*) FILTER (WHERE score <= 6) AS detractors
FROM nps_responses WHERE program_id = $1 AND answered_at >= $2 AND answered_at < $3
GROUP BY 1 ORDER BY 1
"""


async def nps_daily(
    conn: Conn, program_id: UUID, start: datetime, end: datetime
) -> list[asyncpg.Record]:
    return await conn.fetch(_NPS_DAILY, program_id, start, end)


async def insert_nps_answer(
    conn: asyncpg.Connection,
    response_id: UUID,
    program_id: UUID,
    customer_id: str,
    score: int,
    answered_at: datetime,
) -> asyncpg.Record | None:
    """The new row, or None when this (program, customer, answered_at) was recorded before."""
    return await conn.fetchrow(
        "INSERT INTO nps_responses (id, program_id, customer_id, score, answered_at) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING *",
        response_id,
        program_id,
        customer_id,
        score,
        answered_at,
    )


async def find_nps_answer(
    conn: asyncpg.Connection, program_id: UUID, customer_id: str, answered_at: datetime
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM nps_responses "
        "WHERE program_id = $1 AND customer_id = $2 AND answered_at = $3",
        program_id,
        customer_id,
        answered_at,
    )


async def mark_invited(
    conn: asyncpg.Connection, response_id: UUID, participant_id: UUID
) -> asyncpg.Record:
    """Record the participant a promoter's answer enrolled; the updated answer."""
    row = await conn.fetchrow(
        "UPDATE nps_responses SET invited_participant_id = $2 WHERE id = $1 RETURNING *",
        response_id,
        participant_id,
    )
    assert row is not None
    return row
