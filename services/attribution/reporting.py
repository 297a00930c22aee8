"""What attribution tells about its decisions: one referral with its fraud decision and
conversions, a page of referrals in one status (the review queue), a click as recorded, and
funnel counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.attribution.models import ClickOut, FunnelOut, ReferralOut
from services.attribution.repository import counts, inputs, referrals
from services.attribution.signups import signup_out
from shared.http.problems import Problem


async def referral_view(conn: asyncpg.Connection, row: Any) -> dict[str, Any]:
    """A signup row as the API shows a referral."""
    decision = await referrals.decision(conn, row["id"])
    conversions = await referrals.conversions_of(conn, row["id"])
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
                "received_at": c["received_at"],
            }
            for c in conversions
        ],
    ).model_dump(mode="json")


async def referral(pool: asyncpg.Pool, program_id: UUID, referral_id: UUID) -> dict[str, Any]:
    async with pool.acquire() as conn:
        row = await referrals.signup_in_program(conn, program_id, referral_id)
        if row is None:
            raise Problem(404, "referral-not-found", "No such referral", field="referral_id")
        return await referral_view(conn, row)


async def referrals_page(
    pool: asyncpg.Pool,
    program_id: UUID,
    statuses: list[str],
    after: tuple[datetime, UUID],
    limit: int,
) -> tuple[list[dict[str, Any]], tuple[datetime, UUID] | None]:
    """Up to ``limit`` referrals in one of ``statuses`` after the position ``after``
    (signed_up_at, id), oldest first, and the position of the last one when there are more."""
    async with pool.acquire() as conn:
        rows = await counts.signups_page(conn, program_id, statuses, after, limit + 1)
        items = [await referral_view(conn, r) for r in rows[:limit]]
    more = len(rows) > limit
    last = rows[limit - 1] if more else None
    return items, (last["signed_up_at"], last["id"]) if last is not None else None


async def click(pool: asyncpg.Pool, program_id: UUID, click_id: UUID) -> ClickOut:
    row = await inputs.click_of_program(pool, program_id, click_id)
    if row is None:
        raise Problem(
            404, "click-not-found", f"No click {click_id} recorded (yet)", field="click_id"
        )
    return ClickOut(
        click_id=row["click_id"],
        code=row["code"],
        participant_id=row["participant_id"],
        attributable=row["attributable"],
    )


async def funnel(
    pool: asyncpg.Pool,
    program_id: UUID,
    start: datetime,
    end: datetime,
    participant_id: UUID | None,
) -> FunnelOut:
    async with pool.acquire() as conn:
        found = await counts.funnel_counts(conn, program_id, start, end, participant_id)
    return FunnelOut(
        program_id=program_id,
        participant_id=participant_id,
        start=start,
        end=end,
        clicks=found.clicks,
        unique_clicks=found.unique_clicks,
        signups=found.signups,
        attributed_signups=found.attributed_signups,
        flagged=found.flagged,
        conversions=found.conversions,
        rejections=found.rejections,
        unattributed=found.unattributed,
        pending=found.pending,
    )


async def signup_state(pool: asyncpg.Pool, program_id: UUID, signup_id: UUID) -> dict[str, Any]:
    """A signup as the tracking API answers it (pending or decided)."""
    async with pool.acquire() as conn:
        row = await referrals.signup_in_program(conn, program_id, signup_id)
        if row is None:
            raise Problem(
                404, "signup-not-found", "No such signup in this program", field="signup_id"
            )
        return await signup_out(conn, row)
