"""Reviewing a flagged referral: approve it (it proceeds as if the rules had allowed it, and
what was held while it waited is published) or reject it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.attribution.events import (
    enqueue_converted,
    enqueue_rejected,
    enqueue_reversed,
    enqueue_signed_up,
)
from services.attribution.reporting import referral_view
from services.attribution.repository import inputs, referrals
from shared.contracts.referrals import RuleOutcome
from shared.http.problems import Problem


async def review(
    pool: asyncpg.Pool,
    program_id: UUID,
    referral_id: UUID,
    *,
    approve: bool,
    note: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Approve or reject a flagged referral in one transaction; the referral as it is now."""
    async with pool.acquire() as conn, conn.transaction():
        row = await referrals.signup_in_program(conn, program_id, referral_id, lock=True)
        if row is None:
            raise Problem(404, "referral-not-found", "No such referral", field="referral_id")
        if row["status"] != "flagged":
            raise Problem(
                409,
                "not-flagged",
                f"Only a flagged referral can be reviewed; this one is {row['status']}",
                field="referral_id",
            )
        if approve:
            reviewed = await _approve(conn, row, note)
        else:
            await referrals.set_status(conn, referral_id, "rejected", None, note)
            await enqueue_rejected(
                conn, row, [RuleOutcome(rule="review", action="reject", reason=note or "")], now
            )
            reviewed = await referrals.signup(conn, referral_id)
        return await referral_view(conn, reviewed)


async def _approve(
    conn: asyncpg.Connection, row: asyncpg.Record, note: str | None
) -> asyncpg.Record:
    referral_id, referrer_id = row["id"], row["candidate_referrer_id"]
    await referrals.set_status(conn, referral_id, "active", referrer_id, note)
    approved = await referrals.signup(conn, referral_id)
    referrer = await inputs.participant(conn, referrer_id)
    variant = referrer["variant"] if referrer else None
    external = referrer["external_user_id"] if referrer else None
    await enqueue_signed_up(conn, approved, variant, external)
    # What was held while it waited goes out now, in order: conversions, then their refunds.
    for held in await referrals.conversions_of(conn, referral_id):
        if not held["qualified"] or held["published"]:
            continue
        await referrals.release_held_conversion(
            conn, held["id"], held["reason"].removesuffix("_held_for_review")
        )
        await enqueue_converted(conn, approved, held, variant, external)
        for refund_row in await referrals.refunds_of(conn, held["id"]):
            await referrals.mark_refund_published(conn, refund_row["id"])
            await enqueue_reversed(conn, approved, held, refund_row)
    return approved
