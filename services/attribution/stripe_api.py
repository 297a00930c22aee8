"""Stripe events in: the endpoint Stripe posts webhook events to (its signature is the
authentication) and the routes a company configures its endpoints with (program key)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import StringConstraints

from services.attribution import stripe_endpoints
from services.attribution.api import bounds_of
from services.attribution.settings import AttributionSettings
from services.attribution.stripe_models import (
    EVENT_STATUSES,
    EndpointIn,
    EndpointOut,
    EventOut,
    EventPage,
    SecretIn,
)
from services.attribution.stripe_webhooks import SIGNATURE_HEADER, reapply, receive
from shared.http.auth import require_program_key
from shared.http.openapi import problem_responses, some_of
from shared.http.params import listed
from shared.service import runtime_of

router = APIRouter(prefix="/v1/stripe", tags=["stripe"])

_EVENT_BODY = {
    "requestBody": {
        "required": True,
        "description": "A Stripe event, exactly as Stripe sent it (the signature covers the "
        "raw bytes)",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["id", "type"],
                    "properties": {"id": {"type": "string"}, "type": {"type": "string"}},
                }
            }
        },
    },
    "parameters": [
        {
            "name": SIGNATURE_HEADER,
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
            "description": "Stripe's signature header (t=...,v1=...)",
        }
    ],
}


def _tolerance(request: Request) -> int:
    settings = runtime_of(request).settings
    assert isinstance(settings, AttributionSettings)
    return settings.stripe_signature_tolerance_s


@router.post(
    "/{endpoint_id}/events",
    response_model=EventOut,
    responses=problem_responses(400, 404),
    openapi_extra=_EVENT_BODY,
)
async def stripe_event(endpoint_id: UUID, request: Request) -> Any:
    """Where Stripe posts the endpoint's events (no bearer key: a signature by one of the
    endpoint's secrets, within the tolerance, authenticates it; else 400 and nothing is
    stored). 200 with the outcome for every event received: applied, ignored (a type or a
    customer the platform has nothing to do with), unmatched or failed (kept, listed,
    re-applicable); a replay answers the first outcome and changes nothing. 5xx only when
    the event could not be stored, so that Stripe retries."""
    return await receive(
        runtime_of(request).pool,
        endpoint_id,
        await request.body(),
        request.headers.get(SIGNATURE_HEADER),
        tolerance_s=_tolerance(request),
        bounds=bounds_of(request),
        now=datetime.now(UTC),
    )


@router.post("/endpoints", status_code=201, response_model=EndpointOut)
async def create_endpoint(
    body: EndpointIn, request: Request, program_id: UUID = Depends(require_program_key)
) -> Any:
    """A Stripe endpoint for the key's program. Give Stripe ``url_path`` on attribution's
    public address, then add the signing secret Stripe shows (here or with ``/secrets``)."""
    return await stripe_endpoints.create(
        runtime_of(request).pool, program_id, body, datetime.now(UTC)
    )


@router.get("/endpoints", response_model=list[EndpointOut])
async def list_endpoints(request: Request, program_id: UUID = Depends(require_program_key)) -> Any:
    """The program's Stripe endpoints (secrets as fingerprints)."""
    return await stripe_endpoints.list_of(runtime_of(request).pool, program_id)


@router.get(
    "/endpoints/{endpoint_id}", response_model=EndpointOut, responses=problem_responses(404)
)
async def get_endpoint(
    endpoint_id: UUID, request: Request, program_id: UUID = Depends(require_program_key)
) -> Any:
    return await stripe_endpoints.get(runtime_of(request).pool, program_id, endpoint_id)


@router.post(
    "/endpoints/{endpoint_id}/secrets",
    response_model=EndpointOut,
    responses=problem_responses(404, 409),
)
async def add_secret(
    endpoint_id: UUID,
    body: SecretIn,
    request: Request,
    program_id: UUID = Depends(require_program_key),
) -> Any:
    """Add a signing secret (rolling Stripe's secret: add the new one, then retire the old
    one once Stripe signs with the new one only). At most two at once (409)."""
    return await stripe_endpoints.add_secret(
        runtime_of(request).pool,
        program_id,
        endpoint_id,
        body.secret,
        datetime.now(UTC),
    )


@router.delete(
    "/endpoints/{endpoint_id}/secrets/{fingerprint}",
    response_model=EndpointOut,
    responses=problem_responses(404),
)
async def retire_secret(
    endpoint_id: UUID,
    request: Request,
    fingerprint: str = Path(pattern=r"^[0-9a-f]{16}$"),
    program_id: UUID = Depends(require_program_key),
) -> Any:
    """Retire a secret: events signed with it are refused from now on."""
    return await stripe_endpoints.retire_secret(
        runtime_of(request).pool, program_id, endpoint_id, fingerprint
    )


@router.get(
    "/endpoints/{endpoint_id}/events", response_model=EventPage, responses=problem_responses(404)
)
async def list_events(
    endpoint_id: UUID,
    request: Request,
    program_id: UUID = Depends(require_program_key),
    status: list[Annotated[str, StringConstraints(pattern=some_of(EVENT_STATUSES))]] | None = Query(
        default=None,
        max_length=len(EVENT_STATUSES),
        description="Statuses to list, repeated or comma-separated, each one of "
        f"{', '.join(EVENT_STATUSES)} (``unmatched``: those waiting for a mapping); none: all",
    ),
    limit: int = Query(default=100, ge=1, le=500),
) -> Any:
    """Events the endpoint received, oldest first."""
    items = await stripe_endpoints.events(
        runtime_of(request).pool, program_id, endpoint_id, listed(status) or None, limit
    )
    return {"items": items}


@router.post(
    "/endpoints/{endpoint_id}/events/{event_id}/reapply",
    response_model=EventOut,
    responses=problem_responses(404, 409),
)
async def reapply_event(
    endpoint_id: UUID,
    request: Request,
    event_id: str = Path(min_length=1, max_length=255),
    program_id: UUID = Depends(require_program_key),
) -> Any:
    """Apply an unmatched or failed event again (after the customer signed up, or its
    signup recorded ``billing_customer_id``); the answer is its new outcome. An applied or
    ignored event is final (409)."""
    return await reapply(
        runtime_of(request).pool,
        program_id,
        endpoint_id,
        event_id,
        bounds=bounds_of(request),
        now=datetime.now(UTC),
    )
