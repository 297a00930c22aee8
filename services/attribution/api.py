"""Server-to-server tracking API, authenticated by the program's secret key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request

from services.attribution.conversions import track_conversion, track_refund
from services.attribution.models import (
    ClickOut,
    ConversionIn,
    ConversionOut,
    RefundIn,
    RefundOut,
    SignupIn,
    SignupOut,
)
from services.attribution.occurred import TimeBounds
from services.attribution.pii import Hasher
from services.attribution.reporting import click
from services.attribution.settings import DEV_PII_HASH_KEY, AttributionSettings
from services.attribution.signups import track_signup
from shared.http.auth import require_program_key
from shared.http.idempotency import run_idempotent
from shared.http.openapi import problem_responses
from shared.service import runtime_of

router = APIRouter(prefix="/v1", tags=["tracking"])


def bounds_of(request: Request) -> TimeBounds:
    settings = runtime_of(request).settings
    return settings.time_bounds() if isinstance(settings, AttributionSettings) else TimeBounds()


def hasher_of(request: Request) -> Hasher:
    key = getattr(runtime_of(request).settings, "pii_hash_key", None)
    return Hasher(key.get_secret_value() if key else DEV_PII_HASH_KEY)


@router.post("/signups", status_code=201, response_model=SignupOut)
async def signup(
    body: SignupIn,
    request: Request,
    program_id: UUID = Depends(require_program_key),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
) -> Any:
    """Record a referee's signup, attribute it and run the fraud rules. An unknown or expired
    click is recorded, not attributed (``attributed: false`` with the ``reason``): not an
    error. The same customer again answers 200 with the first result."""
    hasher = hasher_of(request)
    return await run_idempotent(
        runtime_of(request).pool,
        scope=f"signups:{program_id}",
        key=idempotency_key,
        body=body.model_dump(mode="json"),
        effect=lambda conn: track_signup(conn, program_id, body, hasher, datetime.now(UTC)),
    )


@router.post(
    "/conversions", status_code=201, response_model=ConversionOut, responses=problem_responses(409)
)
async def conversion(
    body: ConversionIn,
    request: Request,
    program_id: UUID = Depends(require_program_key),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
) -> Any:
    """A purchase by a referred customer. Qualifying purchases publish ``referral.converted``
    once per order (held while the referral waits for review). ``occurred_at`` says when it
    happened (default: now): the program version in force then prices it."""
    bounds = bounds_of(request)
    return await run_idempotent(
        runtime_of(request).pool,
        scope=f"conversions:{program_id}",
        key=idempotency_key,
        body=body.model_dump(mode="json"),
        effect=lambda conn: track_conversion(conn, program_id, body, datetime.now(UTC), bounds),
    )


@router.post(
    "/refunds", status_code=201, response_model=RefundOut, responses=problem_responses(409)
)
async def refund(
    body: RefundIn,
    request: Request,
    program_id: UUID = Depends(require_program_key),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
) -> Any:
    """A full or partial refund of a tracked order: ``referral.reversed`` with ``full`` true
    once the whole order is refunded, false for a partial adjustment. ``occurred_at`` says
    when it happened (default: now)."""
    bounds = bounds_of(request)
    return await run_idempotent(
        runtime_of(request).pool,
        scope=f"refunds:{program_id}",
        key=idempotency_key,
        body=body.model_dump(mode="json"),
        effect=lambda conn: track_refund(conn, program_id, body, datetime.now(UTC), bounds),
    )


@router.get("/clicks/{click_id}", response_model=ClickOut)
async def get_click(
    click_id: UUID, request: Request, program_id: UUID = Depends(require_program_key)
) -> Any:
    """A click as attribution has recorded it (useful to see that capture works)."""
    return await click(runtime_of(request).pool, program_id, click_id)
