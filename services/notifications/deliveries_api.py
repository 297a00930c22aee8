"""Routes of the delivery log: every message with its status and why it was not sent, every
attempt with its error and timing; and redelivery of one message on request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import StringConstraints

from services.notifications import delivery_log
from services.notifications.models import DeliveryOut, DeliveryPage
from services.notifications.trigger_names import FILTER_NAMES, stored_triggers
from shared.http.auth import require_program_access
from shared.http.openapi import problem_responses, some_of
from shared.http.params import listed
from shared.http.problems import Problem
from shared.service import runtime_of

router = APIRouter(prefix="/v1", tags=["deliveries"])


# A page ends at (created_at, id). The cursor spells that out as microseconds since the epoch
# and the id's hex: opaque to clients, and every string the pattern admits is a valid cursor,
# so the schema states the whole rule.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
CURSOR = r"^[0-9]{1,16}\.[0-9a-f]{32}$"


def _cursor(row: dict[str, Any]) -> str:
    return f"{(row['created_at'] - _EPOCH) // _MICROSECOND}.{row['id'].hex}"


def _uncursor(cursor: str) -> tuple[datetime, UUID]:
    micros, ident = cursor.split(".")
    return _EPOCH + int(micros) * _MICROSECOND, UUID(hex=ident)


def _not_found(delivery_id: UUID) -> Problem:
    return Problem(404, "delivery-not-found", f"No delivery {delivery_id}", field="delivery_id")


@router.get(
    "/programs/{program_id}/deliveries",
    response_model=DeliveryPage,
    dependencies=[Depends(require_program_access)],
)
async def list_deliveries(
    program_id: UUID,
    request: Request,
    participant_id: UUID | None = None,
    channel: Literal["email", "webhook", "in_app"] | None = None,
    status: Literal["pending", "sent", "failed", "skipped"] | None = None,
    trigger: list[Annotated[str, StringConstraints(pattern=some_of(FILTER_NAMES))]] | None = Query(
        default=None,
        max_length=len(FILTER_NAMES),
        description="A template trigger (`referral_signed_up`, `share_reminder`) or the "
        "dotted event name the README uses (`referral.signed_up`: the event's webhook "
        "messages and the messages it caused), repeated or comma-separated for several",
    ),
    endpoint_id: UUID | None = None,
    limit: int = Query(default=50, ge=1, le=500),
    cursor: str | None = Query(default=None, pattern=CURSOR),
) -> Any:
    rows, more = await delivery_log.page(
        runtime_of(request).pool,
        program_id,
        participant_id=participant_id,
        channel=channel,
        status=status,
        triggers=stored_triggers(listed(trigger)) or None,
        endpoint_id=endpoint_id,
        before=_uncursor(cursor) if cursor else None,
        limit=limit,
    )
    return DeliveryPage(
        items=[DeliveryOut(**r) for r in rows],
        next_cursor=_cursor(rows[-1]) if more and rows else None,
    )


@router.get(
    "/programs/{program_id}/deliveries/{delivery_id}",
    response_model=DeliveryOut,
    responses=problem_responses(404),
    dependencies=[Depends(require_program_access)],
)
async def get_delivery(program_id: UUID, delivery_id: UUID, request: Request) -> Any:
    row = await delivery_log.get(runtime_of(request).pool, program_id, delivery_id)
    if row is None:
        raise _not_found(delivery_id)
    return DeliveryOut(**row)


@router.post(
    "/programs/{program_id}/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    status_code=202,
    responses=problem_responses(404, 409),
    dependencies=[Depends(require_program_access)],
)
async def redeliver(program_id: UUID, delivery_id: UUID, request: Request) -> Any:
    """Send one webhook message again, with the same ``webhook-id`` (receivers that already
    have it can drop it) and a fresh retry schedule."""
    try:
        row = await delivery_log.redeliver(runtime_of(request).pool, program_id, delivery_id)
    except delivery_log.NotRedeliverable as exc:
        raise Problem(409, "not-redeliverable", str(exc), field="delivery_id") from exc
    if row is None:
        raise _not_found(delivery_id)
    return DeliveryOut(**row)
