"""Referrals as attribution decided them: each decision with its rules, the review queue of
flagged referrals, and funnel counts. Authenticated by the program's secret key."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import StringConstraints

from services.attribution import reporting
from services.attribution.models import STATUSES, FunnelOut, ReferralOut, ReferralPage, ReviewIn
from services.attribution.reviews import review
from shared.http.auth import require_program_key
from shared.http.openapi import some_of
from shared.http.params import listed
from shared.http.problems import Problem
from shared.service import runtime_of

router = APIRouter(prefix="/v1", tags=["review"])


def _encode_cursor(position: tuple[datetime, UUID]) -> str:
    at, sid = position
    raw = json.dumps([at.isoformat(), str(sid)]).encode()
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
    status: list[Annotated[str, StringConstraints(pattern=some_of(STATUSES))]] | None = Query(
        default=None,
        max_length=len(STATUSES),
        description="Statuses to list, repeated (`status=active&status=flagged`) or "
        f"comma-separated (`status=active,flagged`), each one of {', '.join(STATUSES)}; "
        "none: every status",
    ),
    cursor: str | None = None,
    limit: int = Query(default=50, ge=1, le=200),
) -> Any:
    """Referrals of the program, oldest first, in every status unless ``status`` names some
    (``status=flagged`` is the review queue)."""
    statuses = listed(status) or list(STATUSES)
    after = _decode_cursor(cursor) if cursor else (datetime(1970, 1, 1, tzinfo=UTC), UUID(int=0))
    items, last = await reporting.referrals_page(
        runtime_of(request).pool, program_id, statuses, after, limit
    )
    return {"items": items, "next_cursor": _encode_cursor(last) if last else None}


@router.get("/referrals/{referral_id}", response_model=ReferralOut)
async def get_referral(
    referral_id: UUID, request: Request, program_id: UUID = Depends(require_program_key)
) -> Any:
    """One referral with its fraud decision (every rule that fired, its inputs as hashes)."""
    return await reporting.referral(runtime_of(request).pool, program_id, referral_id)


async def _review(
    request: Request, program_id: UUID, referral_id: UUID, body: ReviewIn, approve: bool
) -> Any:
    return await review(
        runtime_of(request).pool,
        program_id,
        referral_id,
        approve=approve,
        note=body.note,
        now=datetime.now(UTC),
    )


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
    return await reporting.funnel(runtime_of(request).pool, program_id, start, end, participant_id)
