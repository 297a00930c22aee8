"""Use cases of Stripe events in: verify a delivery's signature with the official library,
record the event once (by Stripe's event id) and apply it through the tracking use cases
(``track_conversion``, ``track_refund``: the same code as the tracking API, so qualification,
fraud holds and rewards behave the same), in one transaction. An event that cannot be matched
to a customer or an order is kept with its payload, listed, and applied again on request."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import stripe
from pydantic import ValidationError

from services.attribution.conversions import track_conversion, track_refund
from services.attribution.models import ConversionIn, RefundIn
from services.attribution.occurred import TimeBounds
from services.attribution.repository import stripe as repo
from services.attribution.stripe_mapping import (
    ChargeRefund,
    CustomerSource,
    Ignored,
    Purchase,
    Unusable,
    read_event,
)
from shared.http.problems import Problem

SIGNATURE_HEADER = "Stripe-Signature"
# Outcomes that are final: a redelivery changes nothing. The others may be applied again.
FINAL = ("applied", "ignored")


@dataclass(frozen=True)
class Outcome:
    status: str  # applied / ignored / unmatched / failed
    reason: str
    order_id: str | None = None


def verify(payload: bytes, header: str | None, secrets: list[str], tolerance_s: int) -> None:
    """Accept a payload signed with any of the endpoint's secrets (two during a rotation),
    within the tolerance; else a 400 telling a bad signature from a stale one."""
    stale = False
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance_s)
            return
        except stripe.SignatureVerificationError:
            # Signed with this secret but too old: the library checks the time last.
            stale = stale or _signed_with(payload, header, secret)
        except UnicodeDecodeError:
            break
    if stale:
        raise Problem(
            400,
            "stale-stripe-signature",
            f"The signature's timestamp is more than {tolerance_s} s old",
            field=SIGNATURE_HEADER,
        )
    raise Problem(
        400,
        "bad-stripe-signature",
        "No signing secret of this endpoint verifies the Stripe-Signature header",
        field=SIGNATURE_HEADER,
    )


def _signed_with(payload: bytes, header: str | None, secret: str) -> bool:
    try:
        return bool(stripe.WebhookSignature.verify_header(payload, header, secret, None))
    except stripe.SignatureVerificationError:
        return False


def _parse(payload: bytes) -> dict[str, Any]:
    try:
        event = json.loads(payload)
    except ValueError:
        event = None
    if (
        not isinstance(event, dict)
        or not isinstance(event.get("id"), str)
        or not isinstance(event.get("type"), str)
    ):
        raise Problem(400, "malformed-stripe-event", "The body is not a Stripe event", field="body")
    return event


def source_of(endpoint: Any) -> CustomerSource:
    return CustomerSource(endpoint["client_reference_id"], endpoint["metadata_key"])


async def receive(
    pool: asyncpg.Pool,
    endpoint_id: UUID,
    payload: bytes,
    header: str | None,
    *,
    tolerance_s: int,
    bounds: TimeBounds,
    now: datetime,
) -> dict[str, Any]:
    """One delivery from Stripe: the event's outcome (a replay of an applied or ignored
    event answers its first outcome and changes nothing)."""
    endpoint = await repo.endpoint(pool, endpoint_id)
    if endpoint is None:
        raise Problem(
            404, "stripe-endpoint-not-found", "No such Stripe endpoint", field="endpoint_id"
        )
    verify(payload, header, list(endpoint["secrets"]), tolerance_s)
    event = _parse(payload)
    async with pool.acquire() as conn, conn.transaction():
        claimed = await repo.claim_event(conn, endpoint_id, event["id"], event["type"], now)
        if not claimed:
            row = await repo.event_for_update(conn, endpoint_id, event["id"])
            if row is not None and row["status"] in FINAL:
                return event_out(row, replay=True)
        outcome = await apply(conn, endpoint, event, now, bounds)
        row = await _record(conn, endpoint_id, event, outcome, now, again=not claimed)
    return event_out(row, replay=not claimed)


async def reapply(
    pool: asyncpg.Pool,
    program_id: UUID,
    endpoint_id: UUID,
    event_id: str,
    *,
    bounds: TimeBounds,
    now: datetime,
) -> dict[str, Any]:
    """Apply a kept (unmatched or failed) event again, after its mapping was fixed."""
    async with pool.acquire() as conn, conn.transaction():
        endpoint = await repo.endpoint(conn, endpoint_id)
        if endpoint is None or endpoint["program_id"] != program_id:
            raise Problem(
                404, "stripe-endpoint-not-found", "No such Stripe endpoint", field="endpoint_id"
            )
        row = await repo.event_for_update(conn, endpoint_id, event_id)
        if row is None:
            raise Problem(404, "stripe-event-not-found", "No such event", field="event_id")
        if row["status"] in FINAL:
            raise Problem(
                409,
                "stripe-event-final",
                f"This event was {row['status']} already: applying it again changes nothing",
                field="event_id",
            )
        event = row["payload"]
        outcome = await apply(conn, endpoint, event, now, bounds)
        row = await _record(conn, endpoint_id, event, outcome, now, again=True)
    return event_out(row)


async def _record(
    conn: asyncpg.Connection,
    endpoint_id: UUID,
    event: dict[str, Any],
    outcome: Outcome,
    now: datetime,
    *,
    again: bool,
) -> asyncpg.Record:
    return await repo.record_outcome(
        conn,
        endpoint_id,
        event["id"],
        status=outcome.status,
        reason=outcome.reason,
        order_id=outcome.order_id,
        # Kept only while the event may be applied again.
        payload=None if outcome.status in FINAL else event,
        at=now,
        again=again,
    )


def event_out(row: Any, *, replay: bool = False) -> dict[str, Any]:
    return {
        "event_id": row["event_id"],
        "endpoint_id": str(row["endpoint_id"]),
        "type": row["type"],
        "status": row["status"],
        "reason": row["reason"],
        "order_id": row["order_id"],
        "received_at": row["received_at"].isoformat(),
        "applied_at": row["applied_at"].isoformat() if row["applied_at"] else None,
        "attempts": row["attempts"],
        "replay": replay,
    }


async def apply(
    conn: asyncpg.Connection,
    endpoint: Any,
    event: dict[str, Any],
    now: datetime,
    bounds: TimeBounds,
) -> Outcome:
    """Turn the event into the platform's call, inside the caller's transaction."""
    reading = read_event(event, source_of(endpoint))
    program_id = endpoint["program_id"]
    if isinstance(reading, Ignored):
        return Outcome("ignored", reading.reason)
    if isinstance(reading, Unusable):
        return Outcome("failed", reading.reason)
    if isinstance(reading, Purchase):
        return await _convert(conn, program_id, reading, now, bounds)
    return await _refund(conn, program_id, reading, now, bounds)


async def _convert(
    conn: asyncpg.Connection,
    program_id: UUID,
    purchase: Purchase,
    now: datetime,
    bounds: TimeBounds,
) -> Outcome:
    customer_id = purchase.customer.customer_id
    billing_id = purchase.customer.billing_customer_id
    if customer_id is None and billing_id is not None:
        customer_id = await repo.customer_of_billing_id(conn, program_id, billing_id)
    if customer_id is None:
        return Outcome("unmatched", "unknown_customer", purchase.order_id)
    try:
        body = ConversionIn(
            customer_id=customer_id,
            order_id=purchase.order_id,
            amount=purchase.amount,
            currency=purchase.currency,
            occurred_at=purchase.occurred_at,
        )
    except ValidationError as exc:
        return Outcome("failed", _invalid(exc), purchase.order_id)
    try:
        async with conn.transaction():  # a refusal leaves nothing behind
            status, out = await track_conversion(conn, program_id, body, now, bounds)
            await repo.remember_payment(conn, program_id, purchase.payment_ids, purchase.order_id)
    except Problem as problem:
        return _refused(problem, purchase.order_id)
    if status == 202:
        reason = "held_until_signup_decided"
    elif status == 200:
        reason = "order_tracked_already"
    else:
        reason = out["reason"]
    return Outcome("applied", reason, purchase.order_id)


async def _refund(
    conn: asyncpg.Connection,
    program_id: UUID,
    refund: ChargeRefund,
    now: datetime,
    bounds: TimeBounds,
) -> Outcome:
    order_id = await repo.order_of_payment(conn, program_id, refund.payment_ids)
    if order_id is None:
        return Outcome("unmatched", "unknown_charge")
    # One refund id per running total of the charge: each event adds what is new.
    prefix = f"{refund.charge_id}:"
    counted = await repo.refunded_from_charge(conn, program_id, prefix)
    if refund.refunded_total <= counted:
        return Outcome("ignored", "refund_counted_already", order_id)
    try:
        body = RefundIn(
            refund_id=f"{prefix}{refund.refunded_total}",
            order_id=order_id,
            amount=refund.refunded_total - counted,
            currency=refund.currency,
            occurred_at=refund.occurred_at,
        )
    except ValidationError as exc:
        return Outcome("failed", _invalid(exc), order_id)
    try:
        async with conn.transaction():
            status, out = await track_refund(conn, program_id, body, now, bounds)
    except Problem as problem:
        return _refused(problem, order_id)
    if status == 202:
        return Outcome("applied", "held_until_signup_decided", order_id)
    return Outcome("applied", "full_refund" if out["full"] else "partial_refund", order_id)


# What the tracking use cases' refusals mean for a Stripe event: a customer the platform has
# not heard of may sign up yet or be mapped later (unmatched); a customer known and not
# referred is most of a company's billing (ignored); the rest is listed as failed.
_UNMATCHED = {"unknown-customer": "unknown_customer", "unknown-order": "unknown_order"}
_IGNORED = {"customer-not-referred": "customer_not_referred"}


def _refused(problem: Problem, order_id: str) -> Outcome:
    if problem.type in _UNMATCHED:
        return Outcome("unmatched", _UNMATCHED[problem.type], order_id)
    if problem.type in _IGNORED:
        return Outcome("ignored", _IGNORED[problem.type], order_id)
    return Outcome("failed", problem.type, order_id)


def _invalid(exc: ValidationError) -> str:
    fields = sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]})
    return "invalid_" + "_".join(fields or ["event"])
