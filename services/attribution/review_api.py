"""Referrals as attribution decided them: each decision with its rules, the review queue of
flagged referrals, and funnel counts. Authenticated by the program's secret key."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Body, Depends, Query, Request

from services.attribution import repository as repo
from services.attribution import tracking
from services.attribution.models import FunnelOut, ReferralOut, ReferralPage, ReviewIn
from shared.http.auth import require_program_key
from shared.http.problems import Problem
from shared.service import runtime_of

router = APIRouter(prefix="/v1", tags=["review"])


async def referral_out(conn: asyncpg.Connection | asyncpg.Pool, row: Any) -> dict[str, Any]:
    decision = await repo.decision(conn, row["id"])
    conversions = await repo.conversions_of(conn, row["id"])
    return ReferralOut(
        referral_id=row["id"],
        customer_id=row["customer_id"],
        referrer_id=row["referrer_id"],
        candidate_referrer_id=row["candidate_referrer_id"],
        click_id=row["click_id"],
        attributed=row["attributed"],
        reason=row["reason"],
        status=row["status"],
        program_version=row["program_version"],
        signed_up_at=row["signed_up_at"],
        reviewed_at=row["reviewed_at"],
        review_note=row["review_note"],
        decision=(
            {
                "outcome": decision["outcome"],
                "rules": decision["rules"],
                "decided_at": decision["decided_at"],
            }
            if decision
            else None
        ),
        conversions=[
            {
                "conversion_id": c["id"],
                "order_id": c["order_id"],
                "amount": c["amount"],
                "currency": c["currency"],
                "refunded_amount": c["refunded_amount"],
                "qualified": c["qualified"],
                "reason": c["reason"],
                "sequence": c["sequence"],
                "published": c["published"],
                "program_version": c["program_version"],
                "converted_at": c["converted_at"],
            }
            for c in conversions
        ],
    ).model_dump(mode="json")


def _encode_cursor(row: Any) -> str:
    raw = json.dumps([row["signed_up_at"].isoformat(), str(row["id"])]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        at, sid = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(at), UUID(sid)
    except (ValueError, TypeError, binascii.Error):
        raise Problem(
            400, "invalid-cursor", "This cursor was not issued here", field="cursor"
        ) from None


@router.get("/referrals", response_model=ReferralPage)
async def list_referrals(
    request: Request,
    program_id: UUID = Depends(require_program_key),
    status: str = Query(default="flagged", pattern="^(unattributed|active|flagged|rejected)$"),
    cursor: str | None = None,
    limit: int = Query(default=50, ge=1, le=200),
) -> Any:
    """Referrals of the program in one status, oldest first; ``status=flagged`` (the default)
    is the review queue."""
    after_at, after_id = (
        _decode_cursor(cursor) if cursor else (datetime(1970, 1, 1, tzinfo=UTC), UUID(int=0))
    )
    pool = runtime_of(request).pool
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT * FROM signups WHERE program_id = $1 AND status = $2 "
            "AND (signed_up_at, id) > ($3, $4) ORDER BY signed_up_at, id LIMIT $5",
            program_id,
            status,
            after_at,
            after_id,
            limit + 1,
        )
        items = [await referral_out(conn, r) for r in rows[:limit]]
    next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return {"items": items, "next_cursor": next_cursor}


@router.get("/referrals/{referral_id}", response_model=ReferralOut)
async def get_referral(
    referral_id: UUID, request: Request, program_id: UUID = Depends(require_program_key)
) -> Any:
    """One referral with its fraud decision (every rule that fired, its inputs as hashes)."""
    pool = runtime_of(request).pool
    async with pool.acquire() as conn:
        row = await repo.signup_by_id(conn, program_id, referral_id)
        if row is None:
            raise Problem(404, "referral-not-found", "No such referral", field="referral_id")
        return await referral_out(conn, row)


async def _review(
    request: Request, program_id: UUID, referral_id: UUID, body: ReviewIn, approve: bool
) -> Any:
    pool = runtime_of(request).pool
    async with pool.acquire() as conn, conn.transaction():
        row = await tracking.review(
            conn,
            program_id,
            referral_id,
            approve=approve,
            note=body.note,
            now=datetime.now(UTC),
        )
        return await referral_out(conn, row)


@router.post("/referrals/{referral_id}/approve", response_model=ReferralOut)
async def approve(
    referral_id: UUID,
    request: Request,
    program_id: UUID = Depends(require_program_key),
    body: ReviewIn = Body(default_factory=ReviewIn),
) -> Any:
    """Approve a flagged referral: it proceeds as if allowed (signed up, held conversions
    published)."""
    return await _review(request, program_id, referral_id, body, approve=True)


@router.post("/referrals/{referral_id}/reject", response_model=ReferralOut)
async def reject(
    referral_id: UUID,
    request: Request,
    program_id: UUID = Depends(require_program_key),
    body: ReviewIn = Body(default_factory=ReviewIn),
) -> Any:
    """Reject a flagged referral (``referral.rejected`` with rule ``review``)."""
    return await _review(request, program_id, referral_id, body, approve=False)


@router.get("/funnel", response_model=FunnelOut)
async def funnel(
    request: Request,
    program_id: UUID = Depends(require_program_key),
    start: datetime | None = Query(default=None, alias="from"),
    end: datetime | None = Query(default=None, alias="to"),
    participant_id: UUID | None = None,
) -> Any:
    """Clicks, unique clicks, signups, conversions and rejections by reason over
    [``from``, ``to``) (default: the last 30 days), for the program or one participant."""
    end = end or datetime.now(UTC)
    start = start or end - timedelta(days=30)
    for name, value in (("from", start), ("to", end)):
        if value.tzinfo is None:
            raise Problem(422, "naive-time", "Give a time zone (e.g. Z)", field=name)
    if start >= end:
        raise Problem(422, "empty-range", "'from' must be before 'to'", field="from")
    pool = runtime_of(request).pool
    who = "AND participant_id = $4" if participant_id else "AND $4::uuid IS NULL"
    referrer = "AND s.candidate_referrer_id = $4" if participant_id else "AND $4::uuid IS NULL"
    args = (program_id, start, end, participant_id)
    async with pool.acquire() as conn:
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
            unattributed = await conn.fetch(
                "SELECT reason, count(*) AS n FROM signups WHERE program_id = $1 "
                "AND status = 'unattributed' AND signed_up_at >= $2 AND signed_up_at < $3 "
                "GROUP BY reason",
                program_id,
                start,
                end,
            )
    return FunnelOut(
        program_id=program_id,
        participant_id=participant_id,
        start=start,
        end=end,
        clicks=clicks["n"],
        unique_clicks=clicks["uniq"],
        signups=signups["n"],
        attributed_signups=signups["active"],
        flagged=signups["flagged"],
        conversions=conversions,
        rejections={r["reason"]: r["n"] for r in rejections},
        unattributed={r["reason"]: r["n"] for r in unattributed},
    )
