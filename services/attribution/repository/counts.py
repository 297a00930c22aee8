"""Read-only queries over many referrals: a page of referrals in some statuses, and the funnel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg


async def signups_page(
    conn: asyncpg.Connection,
    program_id: UUID,
    statuses: list[str],
    after: tuple[datetime, UUID],
    limit: int,
) -> list[asyncpg.Record]:
    """Up to ``limit`` signups in one of ``statuses`` after ``after`` (signed_up_at, id),
    oldest first."""
    return await conn.fetch(
        "SELECT * FROM signups WHERE program_id = $1 AND status = ANY($2::text[]) "
        "AND (signed_up_at, id) > ($3, $4) ORDER BY signed_up_at, id LIMIT $5",
        program_id,
        statuses,
        *after,
        limit,
    )


@dataclass(frozen=True)
class FunnelCounts:
    clicks: int
    unique_clicks: int
    signups: int
    attributed_signups: int
    flagged: int
    conversions: int
    rejections: dict[str, int]
    unattributed: dict[str, int]
    pending: int = 0


async def funnel_counts(
    conn: asyncpg.Connection,
    program_id: UUID,
    start: datetime,
    end: datetime,
    participant_id: UUID | None,
) -> FunnelCounts:
    """Counts over ``[start, end)`` for the program, or for the referrals of one participant
    (then without the program-wide unattributed signups)."""
    who = "AND participant_id = $4" if participant_id else "AND $4::uuid IS NULL"
    referrer = "AND s.candidate_referrer_id = $4" if participant_id else "AND $4::uuid IS NULL"
    args = (program_id, start, end, participant_id)
    clicks = await conn.fetchrow(
        "SELECT count(*) AS n, count(DISTINCT visitor_hash) "
        "+ count(*) FILTER (WHERE visitor_hash IS NULL) AS uniq FROM clicks "
        f"WHERE program_id = $1 AND clicked_at >= $2 AND clicked_at < $3 {who}",
        *args,
    )
    signups = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE candidate_referrer_id IS NOT NULL) AS n, "
        "count(*) FILTER (WHERE status = 'active') AS active, "
        "count(*) FILTER (WHERE status = 'flagged') AS flagged FROM signups s "
        f"WHERE program_id = $1 AND signed_up_at >= $2 AND signed_up_at < $3 {referrer}",
        *args,
    )
    conversions = await conn.fetchval(
        "SELECT count(*) FROM conversions c JOIN signups s ON s.id = c.signup_id "
        "WHERE c.program_id = $1 AND c.converted_at >= $2 AND c.converted_at < $3 "
        f"AND c.qualified {referrer}",
        *args,
    )
    # A referral rejected by rules counts once under each enforced rejecting rule; one
    # rejected by a reviewer counts under "review".
    rejections = await conn.fetch(
        "SELECT coalesce(r.rule, 'review') AS reason, count(DISTINCT s.id) AS n "
        "FROM signups s LEFT JOIN fraud_decisions d ON d.signup_id = s.id "
        "LEFT JOIN LATERAL (SELECT x->>'rule' AS rule FROM jsonb_array_elements(d.rules) x "
        "  WHERE s.reviewed_at IS NULL AND (x->>'enforced')::boolean "
        "  AND x->>'action' = 'reject') r ON true "
        "WHERE s.status = 'rejected' AND s.program_id = $1 AND s.signed_up_at >= $2 "
        f"AND s.signed_up_at < $3 {referrer} "
        "GROUP BY 1",
        *args,
    )
    unattributed = []
    if participant_id is None:
        # Pending signups are counted under "pending" (their referrer is not known yet).
        unattributed = await conn.fetch(
            "SELECT status, reason, count(*) AS n FROM signups WHERE program_id = $1 "
            "AND status IN ('unattributed', 'pending') AND signed_up_at >= $2 "
            "AND signed_up_at < $3 GROUP BY status, reason",
            program_id,
            start,
            end,
        )
    return FunnelCounts(
        clicks=clicks["n"],
        unique_clicks=clicks["uniq"],
        signups=signups["n"],
        attributed_signups=signups["active"],
        flagged=signups["flagged"],
        conversions=conversions,
        rejections={r["reason"]: r["n"] for r in rejections},
        unattributed={r["reason"]: r["n"] for r in unattributed if r["status"] != "pending"},
        pending=sum(r["n"] for r in unattributed if r["status"] == "pending"),
    )
