"""Purchases and refunds of a customer whose signup is still pending: accepted (202) and
stored as received, to be applied in order once the signup is decided (``pending.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.attribution.models import ConversionIn, HeldOut, RefundIn
from services.attribution.repository import pending
from shared.http.problems import Problem


def _held_out(row: Any, customer_id: str) -> dict[str, Any]:
    return HeldOut(
        kind=row["kind"],
        signup_id=row["signup_id"],
        customer_id=customer_id,
        order_id=row["order_id"],
        refund_id=row["natural_key"] if row["kind"] == "refund" else None,
        received_at=row["received_at"],
    ).model_dump(mode="json")


async def hold_conversion(
    conn: asyncpg.Connection,
    program_id: UUID,
    signup: asyncpg.Record,
    body: ConversionIn,
    now: datetime,
) -> tuple[int, dict[str, Any]]:
    """202: the purchase is kept (once per order) until the signup is decided."""
    row = await pending.hold(
        conn,
        program_id=program_id,
        signup_id=signup["id"],
        kind="conversion",
        natural_key=body.order_id,
        order_id=body.order_id,
        body=body.model_dump(mode="json"),
        received_at=now,
    )
    if row["signup_id"] != signup["id"]:
        raise Problem(
            409,
            "order-already-tracked",
            "This order id was tracked for another customer",
            field="order_id",
        )
    return 202, _held_out(row, signup["customer_id"])


async def hold_refund(
    conn: asyncpg.Connection, program_id: UUID, body: RefundIn, now: datetime
) -> tuple[int, dict[str, Any]] | None:
    """202 when the refunded order is a held purchase (the refund waits with it); None when
    no held purchase has this order id, or its signup was decided meanwhile (its purchase is
    applied by the time this returns: the caller reads the order again)."""
    purchase = await pending.held_conversion_of_order(conn, program_id, body.order_id)
    if purchase is None or not await pending.still_pending(conn, purchase["signup_id"]):
        return None
    row = await pending.hold(
        conn,
        program_id=program_id,
        signup_id=purchase["signup_id"],
        kind="refund",
        natural_key=body.refund_id,
        order_id=body.order_id,
        body=body.model_dump(mode="json"),
        received_at=now,
    )
    return 202, _held_out(row, purchase["body"]["customer_id"])
