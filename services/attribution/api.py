"""Server-to-server tracking API, authenticated by the program's secret key."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Request

from services.attribution.conversions import track_conversion, track_refund
from services.attribution.models import (
    ClickOut,
    ConversionIn,
    ConversionOut,
    HeldOut,
    RefundIn,
    RefundOut,
    SignupIn,
    SignupOut,
)
from services.attribution.occurred import TimeBounds
from services.attribution.pii import Hasher
from services.attribution.reporting import click, signup_state
from services.attribution.settings import DEV_PII_HASH_KEY, AttributionSettings
from services.attribution.signups import SignupLimits, track_signup
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


def limits_of(request: Request) -> SignupLimits:
    settings = runtime_of(request).settings
    assert isinstance(settings, AttributionSettings)
    return SignupLimits(
        bounds=settings.signup_time_bounds(),
        pending_limit=timedelta(seconds=settings.pending_signup_limit_s),
    )


_PENDING = {
    202: {
        "model": SignupOut,
        "description": "Pending: the click or code it names has not reached attribution yet. "
        "Poll the Location (GET /v1/signups/{id}); it is decided when that arrives, or "
        "given up after PENDING_SIGNUP_LIMIT_S.",
    },
    200: {"model": SignupOut, "description": "The customer is known: its current state"},
}


@router.post(
    "/signups",
    status_code=201,
    response_model=SignupOut,
    responses={**_PENDING, **problem_responses(422)},
)
async def signup(
    body: SignupIn,
    request: Request,
    program_id: UUID = Depends(require_program_key),
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
) -> Any:
    """Record a referee's signup, attribute it and run the fraud rules (those in force at its
    ``occurred_at``). An expired or other-program click is recorded, not attributed
    (``attributed: false`` with the ``reason``): not an error. A click or code attribution
    has not heard of yet answers 202 ``pending``. The same customer again answers 200 with
    its current state. ``Location`` names the signup."""
    hasher = hasher_of(request)
    limits = limits_of(request)
    response = await run_idempotent(
        runtime_of(request).pool,
        scope=f"signups:{program_id}",
        key=idempotency_key,
        body=body.model_dump(mode="json"),
        effect=lambda conn: track_signup(conn, program_id, body, hasher, datetime.now(UTC), limits),
    )
    response.headers["Location"] = f"/v1/signups/{json.loads(response.body)['signup_id']}"
    return response


@router.get("/signups/{signup_id}", response_model=SignupOut, responses=problem_responses(404))
async def get_signup(
    signup_id: UUID, request: Request, program_id: UUID = Depends(require_program_key)
) -> Any:
    """A signup's current state: poll it while ``pending``."""
    return await signup_state(runtime_of(request).pool, program_id, signup_id)


_HELD = {
    202: {
        "model": HeldOut,
        "description": "The customer's signup is pending: stored, applied once it is decided",
    }
}


@router.post(
    "/conversions",
    status_code=201,
    response_model=ConversionOut,
    responses={**problem_responses(409), **_HELD},
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
    "/refunds",
    status_code=201,
    response_model=RefundOut,
    responses={**problem_responses(409), **_HELD},
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
