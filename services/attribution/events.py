"""The referral events attribution writes to its outbox (in the caller's transaction), all
keyed by the referrer id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from shared.contracts import (
    ReferralConverted,
    ReferralFlagged,
    ReferralPending,
    ReferralRejected,
    ReferralReversed,
    ReferralSignedUp,
)
from shared.contracts.referrals import RuleOutcome
from shared.messaging.outbox import OutboxRow, enqueue, outbox_row

SOURCE = "/services/attribution"


async def enqueue_signed_up(
    conn: asyncpg.Connection,
    signup: dict[str, Any] | asyncpg.Record,
    variant: str | None,
    referrer_external_user_id: str | None,
) -> None:
    await enqueue(
        conn,
        ReferralSignedUp(
            referral_id=signup["id"],
            program_id=signup["program_id"],
            referrer_id=signup["referrer_id"],
            referee_customer_id=signup["customer_id"],
            click_id=signup["click_id"],
            signed_up_at=signup["signed_up_at"],
            variant=variant,
            referrer_external_user_id=referrer_external_user_id,
        ),
        source=SOURCE,
    )


async def enqueue_pending(
    conn: asyncpg.Connection,
    signup: dict[str, Any],
    waiting_for: str,
    expires_at: datetime,
    *,
    resolved: bool = False,
) -> None:
    """``referral.pending``: the signup waits for its click or code, or (``resolved``) what
    became of it. Written once each: on receipt and in the one transition out of pending."""
    await enqueue(
        conn,
        ReferralPending(
            referral_id=signup["id"],
            program_id=signup["program_id"],
            referee_customer_id=signup["customer_id"],
            waiting_for=waiting_for,
            click_id=signup["click_id"],
            referral_code=signup["referral_code"] if signup["click_id"] is None else None,
            signed_up_at=signup["signed_up_at"],
            received_at=signup["received_at"],
            expires_at=expires_at,
            resolved_at=signup["decided_at"] if resolved else None,
            status=signup["status"] if resolved else "pending",
            reason=signup["reason"] if resolved else None,
            referrer_id=signup["candidate_referrer_id"] if resolved else None,
        ),
        source=SOURCE,
    )


async def enqueue_flagged(
    conn: asyncpg.Connection, signup: dict[str, Any], rules: list[RuleOutcome], at: datetime
) -> None:
    await enqueue(
        conn,
        ReferralFlagged(
            referral_id=signup["id"],
            program_id=signup["program_id"],
            referrer_id=signup["candidate_referrer_id"],
            referee_customer_id=signup["customer_id"],
            rules=rules,
            flagged_at=at,
        ),
        source=SOURCE,
    )


async def enqueue_rejected(
    conn: asyncpg.Connection,
    signup: dict[str, Any] | asyncpg.Record,
    rules: list[RuleOutcome],
    at: datetime,
) -> None:
    await enqueue(
        conn,
        ReferralRejected(
            referral_id=signup["id"],
            program_id=signup["program_id"],
            referrer_id=signup["candidate_referrer_id"],
            referee_customer_id=signup["customer_id"],
            rules=rules,
            rejected_at=at,
        ),
        source=SOURCE,
    )


def _converted_event(
    signup: dict[str, Any] | asyncpg.Record,
    conversion: dict[str, Any] | asyncpg.Record,
    variant: str | None,
    referrer_external_user_id: str | None,
) -> ReferralConverted:
    return ReferralConverted(
        conversion_id=conversion["id"],
        referral_id=signup["id"],
        program_id=signup["program_id"],
        referrer_id=signup["referrer_id"],
        referee_customer_id=signup["customer_id"],
        order_id=conversion["order_id"],
        amount=conversion["amount"],
        currency=conversion["currency"],
        converted_at=conversion["converted_at"],
        program_version=conversion["program_version"],
        variant=variant,
        sequence=conversion["sequence"],
        received_at=conversion["received_at"],
        referrer_external_user_id=referrer_external_user_id,
    )


async def enqueue_converted(
    conn: asyncpg.Connection,
    signup: dict[str, Any] | asyncpg.Record,
    conversion: dict[str, Any] | asyncpg.Record,
    variant: str | None,
    referrer_external_user_id: str | None,
) -> None:
    event = _converted_event(signup, conversion, variant, referrer_external_user_id)
    await enqueue(conn, event, source=SOURCE)


def converted_outbox_row(
    signup: dict[str, Any] | asyncpg.Record,
    conversion: dict[str, Any] | asyncpg.Record,
    variant: str | None,
    referrer_external_user_id: str | None,
) -> OutboxRow:
    """``referral.converted`` as an outbox row, for a caller that writes it together with the
    conversion in one statement."""
    event = _converted_event(signup, conversion, variant, referrer_external_user_id)
    return outbox_row(event, source=SOURCE)


async def enqueue_reversed(
    conn: asyncpg.Connection,
    signup: dict[str, Any] | asyncpg.Record,
    conversion: dict[str, Any] | asyncpg.Record,
    refund: dict[str, Any] | asyncpg.Record,
) -> None:
    await enqueue(
        conn,
        ReferralReversed(
            refund_id=refund["id"],
            conversion_id=conversion["id"],
            referral_id=signup["id"],
            program_id=signup["program_id"],
            referrer_id=signup["referrer_id"],
            order_id=conversion["order_id"],
            refunded_amount=refund["amount"],
            currency=conversion["currency"],
            full=refund["full_refund"],
            reversed_at=refund["refunded_at"],
            referee_customer_id=signup["customer_id"],
            sequence=conversion["sequence"] or 1,
            received_at=refund["received_at"],
        ),
        source=SOURCE,
    )
