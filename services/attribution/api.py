"""Server-to-server tracking API, authenticated by the program's secret key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Header, Request

from services.attribution import repository as repo
from services.attribution.models import ClickOut, ConversionIn, ConversionOut, SignupIn, SignupOut
from services.attribution.policy import Decision, attribute_click, version_in_force
from shared.contracts import ReferralConverted, ReferralSignedUp
from shared.http.auth import require_program_key
from shared.http.idempotency import run_idempotent
from shared.http.problems import Problem
from shared.messaging.outbox import enqueue
from shared.service import runtime_of

router = APIRouter(prefix="/v1", tags=["tracking"])
SOURCE = "/services/attribution"


def _signup_out(row: Any) -> dict[str, Any]:
    return SignupOut(
        signup_id=row["id"],
        customer_id=row["customer_id"],
        attributed=row["attributed"],
        referrer_id=row["referrer_id"],
        reason=row["reason"],
    ).model_dump(mode="json")


@router.post("/signups", status_code=201, response_model=SignupOut)
async def signup(
    body: SignupIn,
    request: Request,
    program_id: UUID = Depends(require_program_key),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
) -> Any:
    """Record a referee's signup. An unknown or expired click is recorded, not attributed."""

    async def effect(conn: asyncpg.Connection) -> tuple[int, dict[str, Any]]:
        existing = await repo.get_signup(conn, program_id, body.customer_id)
        if existing is not None:
            return 200, _signup_out(existing)
        now = datetime.now(UTC)
        if body.click_id is not None:
            decision = attribute_click(
                await repo.get_click(conn, body.click_id),
                program_id=program_id,
                signed_up_at=now,
                window_days=await repo.window_days(conn, program_id),
            )
        else:
            referrer = await repo.participant_by_code(conn, program_id, body.referral_code or "")
            decision = Decision(referrer, "code" if referrer else "unknown_code")
        values = {
            "id": uuid.uuid4(),
            "program_id": program_id,
            "customer_id": body.customer_id,
            "referrer_id": decision.referrer_id,
            "click_id": body.click_id,
            "attributed": decision.attributed,
            "reason": decision.reason,
            "signed_up_at": now,
        }
        if not await repo.insert_signup(conn, values):
            # A concurrent request for the same customer won; answer with its result.
            return 200, _signup_out(await repo.get_signup(conn, program_id, body.customer_id))
        if decision.referrer_id is not None:
            await enqueue(
                conn,
                ReferralSignedUp(
                    referral_id=values["id"],
                    program_id=program_id,
                    referrer_id=decision.referrer_id,
                    referee_customer_id=body.customer_id,
                    click_id=body.click_id,
                    signed_up_at=now,
                ),
                source=SOURCE,
            )
        return 201, _signup_out(values)

    return await run_idempotent(
        runtime_of(request).pool,
        scope=f"signups:{program_id}",
        key=idempotency_key,
        body=body.model_dump(mode="json"),
        effect=effect,
    )


@router.post("/conversions", status_code=201, response_model=ConversionOut)
async def conversion(
    body: ConversionIn,
    request: Request,
    program_id: UUID = Depends(require_program_key),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
) -> Any:
    """A purchase by a referred customer; publishes ``referral.converted`` once per order."""

    async def effect(conn: asyncpg.Connection) -> tuple[int, dict[str, Any]]:
        signup_row = await repo.get_signup(conn, program_id, body.customer_id)
        if signup_row is None:
            raise Problem(
                422,
                "unknown-customer",
                "No signup was tracked for this customer",
                field="customer_id",
            )
        if not signup_row["attributed"]:
            raise Problem(
                422,
                "customer-not-referred",
                f"This customer's signup was not attributed ({signup_row['reason']})",
                field="customer_id",
            )
        now = datetime.now(UTC)
        version = version_in_force(await repo.versions(conn, program_id), now)
        values = {
            "id": uuid.uuid4(),
            "signup_id": signup_row["id"],
            "program_id": program_id,
            "order_id": body.order_id,
            "amount": body.amount,
            "currency": body.currency,
            "converted_at": now,
        }
        out = ConversionOut(
            conversion_id=values["id"],
            referral_id=signup_row["id"],
            referrer_id=signup_row["referrer_id"],
            order_id=body.order_id,
            program_version=version,
        ).model_dump(mode="json")
        if not await repo.insert_conversion(conn, values):
            existing = await repo.get_conversion(conn, program_id, body.order_id)
            if existing is None or existing["signup_id"] != signup_row["id"]:
                raise Problem(
                    409,
                    "order-already-tracked",
                    "This order id was tracked for another customer",
                    field="order_id",
                )
            return 200, {**out, "conversion_id": str(existing["id"])}
        await enqueue(
            conn,
            ReferralConverted(
                conversion_id=values["id"],
                referral_id=signup_row["id"],
                program_id=program_id,
                referrer_id=signup_row["referrer_id"],
                referee_customer_id=body.customer_id,
                order_id=body.order_id,
                amount=body.amount,
                currency=body.currency,
                converted_at=now,
                program_version=version,
            ),
            source=SOURCE,
        )
        return 201, out

    return await run_idempotent(
        runtime_of(request).pool,
        scope=f"conversions:{program_id}",
        key=idempotency_key,
        body=body.model_dump(mode="json"),
        effect=effect,
    )


@router.get("/clicks/{click_id}", response_model=ClickOut)
async def get_click(
    click_id: UUID, request: Request, program_id: UUID = Depends(require_program_key)
) -> Any:
    """A click as attribution has recorded it (useful to see that capture works)."""
    pool = runtime_of(request).pool
    row = await pool.fetchrow("SELECT * FROM clicks WHERE click_id = $1", click_id)
    if row is None or row["program_id"] != program_id:
        raise Problem(
            404, "click-not-found", f"No click {click_id} recorded (yet)", field="click_id"
        )
    return ClickOut(
        click_id=row["click_id"],
        code=row["code"],
        participant_id=row["participant_id"],
        attributable=row["attributable"],
    )
