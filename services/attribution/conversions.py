"""Tracking purchases and refunds of referred customers, inside the caller's transaction:
qualify a purchase under the version in force when it happened (its ``occurred_at``, which
may be well before it arrives), record it and write ``referral.converted`` (held while the
referral waits for review); record a refund and write ``referral.reversed`` for a conversion
that was published. Both keep the time they happened and the time they were received."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.attribution import held
from services.attribution.events import converted_outbox_row, enqueue_reversed
from services.attribution.models import ConversionIn, RefundIn
from services.attribution.occurred import TimeBounds, not_before, occurred_at
from services.attribution.policy import qualify
from services.attribution.repository import inputs, referrals
from shared.contracts.sections.attribution import AttributionPolicy
from shared.http.problems import Problem


def _iso(at: datetime) -> str:
    # The answer is stored for idempotent replays as JSON: one spelling, whichever offset
    # the caller used.
    return at.astimezone(UTC).isoformat()


def _conversion_out(signup: Any, conversion: Any) -> dict[str, Any]:
    return {
        "conversion_id": str(conversion["id"]),
        "referral_id": str(signup["id"]),
        "referrer_id": str(signup["referrer_id"] or signup["candidate_referrer_id"]),
        "order_id": conversion["order_id"],
        "program_version": conversion["program_version"],
        "qualified": conversion["qualified"],
        "reason": conversion["reason"],
        "sequence": conversion["sequence"],
        "published": conversion["published"],
        "occurred_at": _iso(conversion["converted_at"]),
        "received_at": _iso(conversion["received_at"]),
    }


async def track_conversion(
    conn: asyncpg.Connection,
    program_id: UUID,
    body: ConversionIn,
    now: datetime,
    bounds: TimeBounds = TimeBounds(),
) -> tuple[int, dict[str, Any]]:
    """``now`` is when the purchase was received; it happened at ``body.occurred_at``."""
    # Round trips are the cost of this call: the lock, one read of everything the verdict
    # needs, one statement for the row and its event.
    converted_at = occurred_at(body.occurred_at, now, bounds)
    signup_row = await referrals.signup_for_conversion(conn, program_id, body.customer_id)
    if signup_row is None:
        raise Problem(
            422, "unknown-customer", "No signup was tracked for this customer", field="customer_id"
        )
    if signup_row["status"] == "pending":
        # Kept as received and applied once the signup is decided (pending.py).
        return await held.hold_conversion(conn, program_id, signup_row, body, now)
    if signup_row["status"] == "unattributed":
        raise Problem(
            422,
            "customer-not-referred",
            f"This customer's signup was not attributed ({signup_row['reason']})",
            field="customer_id",
        )
    context = await referrals.conversion_context(
        conn, program_id, body.order_id, signup_row["id"], converted_at
    )
    if context["existing"] is not None:
        existing = await referrals.conversion_of_order(conn, program_id, body.order_id)
        if existing["signup_id"] != signup_row["id"]:
            raise Problem(
                409,
                "order-already-tracked",
                "This order id was tracked for another customer",
                field="order_id",
            )
        return 200, _conversion_out(signup_row, existing)
    _check_purchase_time(converted_at, signup_row["signed_up_at"], context, bounds)
    version = context["version"]
    if version is None:
        attribution = AttributionPolicy()
    else:
        attribution, _ = await inputs.policies_of(conn, program_id, version)
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "signup_id": signup_row["id"],
        "program_id": program_id,
        "order_id": body.order_id,
        "amount": body.amount,
        "currency": body.currency,
        "converted_at": converted_at,
        "received_at": now,
        "program_version": version,
        "published": False,
        "sequence": None,
    }
    if signup_row["status"] == "rejected":
        values.update(qualified=False, reason="referral_rejected")
    else:
        verdict = qualify(
            attribution.qualification,
            signed_up_at=signup_row["signed_up_at"],
            converted_at=converted_at,
            amount=body.amount,
            currency=body.currency,
            earlier=list(context["earlier"]),
        )
        values.update(qualified=verdict.qualified, reason=verdict.reason, sequence=verdict.sequence)
        if verdict.qualified and signup_row["status"] == "flagged":
            values["reason"] = f"{verdict.reason}_held_for_review"
        values["published"] = verdict.qualified and signup_row["status"] == "active"
    event = None
    if values["published"]:
        event = converted_outbox_row(
            signup_row,
            values,
            signup_row["referrer_variant"],
            signup_row["referrer_external_user_id"],
        )
    if not await referrals.insert_conversion_with_event(conn, values, event):
        # Only another customer's order can get here (ours are serialised by the lock).
        raise Problem(
            409, "order-already-tracked", "This order id was tracked already", field="order_id"
        )
    return 201, _conversion_out(signup_row, values)


def _check_purchase_time(
    converted_at: datetime, signed_up_at: datetime, context: Any, bounds: TimeBounds
) -> None:
    """A referred purchase follows its signup, and a program prices only what happened while
    it ran (a rewards service could never find a version for it)."""
    if not not_before(converted_at, signed_up_at, bounds):
        raise Problem(
            422,
            "purchase-before-signup",
            "occurred_at is before this customer's signup",
            field="occurred_at",
        )
    start = context["program_start"]
    if context["version"] is None and start is not None:
        raise Problem(
            422,
            "before-program-start",
            f"occurred_at is before the program's first version took effect ({start})",
            field="occurred_at",
        )


def _refund_out(refund: Any, conversion: Any, refunded_total: int) -> dict[str, Any]:
    return {
        "refund_id": refund["refund_id"],
        "order_id": conversion["order_id"],
        "conversion_id": str(conversion["id"]),
        "amount": refund["amount"],
        "currency": conversion["currency"],
        "refunded_total": refunded_total,
        "full": refund["full_refund"],
        "published": refund["published"],
        "occurred_at": _iso(refund["refunded_at"]),
        "received_at": _iso(refund["received_at"]),
    }


async def track_refund(
    conn: asyncpg.Connection,
    program_id: UUID,
    body: RefundIn,
    now: datetime,
    bounds: TimeBounds = TimeBounds(),
) -> tuple[int, dict[str, Any]]:
    """``now`` is when the refund was received; it happened at ``body.occurred_at``."""
    refunded_at = occurred_at(body.occurred_at, now, bounds)
    conversion_row = await referrals.conversion_of_order(conn, program_id, body.order_id, lock=True)
    if conversion_row is None:
        # A refund of a purchase held with its pending signup waits with it.
        held_answer = await held.hold_refund(conn, program_id, body, now)
        if held_answer is not None:
            return held_answer
        # The signup may have been decided meanwhile, its purchase applied.
        conversion_row = await referrals.conversion_of_order(
            conn, program_id, body.order_id, lock=True
        )
    if conversion_row is None:
        raise Problem(
            422, "unknown-order", "No conversion was tracked for this order", field="order_id"
        )
    existing = await referrals.refund_in_program(conn, program_id, body.refund_id)
    if existing is not None:
        if existing["conversion_id"] != conversion_row["id"] or (
            body.amount is not None and body.amount != existing["amount"]
        ):
            raise Problem(
                409,
                "refund-already-tracked",
                "This refund id was tracked with another order or amount",
                field="refund_id",
            )
        return 200, _refund_out(existing, conversion_row, conversion_row["refunded_amount"])
    if body.currency is not None and body.currency != conversion_row["currency"]:
        raise Problem(
            422,
            "currency-mismatch",
            f"The order was in {conversion_row['currency']}",
            field="currency",
        )
    if not not_before(refunded_at, conversion_row["converted_at"], bounds):
        raise Problem(
            422,
            "refund-before-purchase",
            "occurred_at is before the refunded purchase",
            field="occurred_at",
        )
    left = conversion_row["amount"] - conversion_row["refunded_amount"]
    if left == 0:
        raise Problem(409, "already-refunded", "This order is fully refunded", field="order_id")
    amount = left if body.amount is None else body.amount
    if amount > left:
        raise Problem(
            422,
            "refund-exceeds-order",
            f"At most {left} minor units of this order are left to refund",
            field="amount",
        )
    total = conversion_row["refunded_amount"] + amount
    values = {
        "id": uuid.uuid4(),
        "program_id": program_id,
        "refund_id": body.refund_id,
        "conversion_id": conversion_row["id"],
        "amount": amount,
        "full_refund": total == conversion_row["amount"],
        # Only a conversion that was announced needs announcing its reversal.
        "published": conversion_row["published"],
        "refunded_at": refunded_at,
        "received_at": now,
    }
    if not await referrals.insert_refund(conn, values):
        raise Problem(
            409, "refund-already-tracked", "This refund id was tracked already", field="refund_id"
        )
    await referrals.set_refunded_amount(conn, conversion_row["id"], total)
    if values["published"]:
        signup_row = await referrals.signup(conn, conversion_row["signup_id"])
        await enqueue_reversed(conn, signup_row, conversion_row, values)
    return 201, _refund_out(values, conversion_row, total)
