"""The delivery log: every message with its status and why it was not sent, every attempt
with its error and timing; and redelivery of one message on request."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from shared.http.auth import require_program_access
from shared.http.problems import Problem
from shared.service import runtime_of

router = APIRouter(prefix="/v1", tags=["deliveries"])

_COLUMNS = (
    "id, event_id, participant_id, channel, trigger, category, endpoint_id, status, reason, "
    "attempts, next_attempt_at, created_at, sent_at"
)


class AttemptOut(BaseModel):
    attempt: int
    status: str
    error: str | None
    started_at: datetime
    duration_ms: float


class DeliveryOut(BaseModel):
    id: UUID
    event_id: UUID
    participant_id: UUID | None
    channel: str
    trigger: str
    category: str
    endpoint_id: UUID | None
    status: str
    reason: str | None
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    sent_at: datetime | None
    attempt_log: list[AttemptOut]


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


def _cursor(row: Any) -> str:
    raw = json.dumps([row["created_at"].isoformat(), str(row["id"])])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _uncursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        created, ident = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(created), UUID(ident)
    except (ValueError, TypeError) as exc:
        raise Problem(400, "invalid-cursor", "This cursor is not valid", field="cursor") from exc


async def _with_attempts(pool: Any, rows: list[Any]) -> list[DeliveryOut]:
    attempts = await pool.fetch(
        "SELECT delivery_id, attempt, status, error, started_at, duration_ms "
        "FROM delivery_attempts WHERE delivery_id = ANY($1::uuid[]) ORDER BY id",
        [r["id"] for r in rows],
    )
    by_delivery: dict[UUID, list[AttemptOut]] = {}
    for a in attempts:
        by_delivery.setdefault(a["delivery_id"], []).append(
            AttemptOut(**{k: a[k] for k in a.keys() if k != "delivery_id"})
        )
    return [
        DeliveryOut(
            **{
                **dict(r),
                "next_attempt_at": r["next_attempt_at"] if r["status"] == "pending" else None,
            },
            attempt_log=by_delivery.get(r["id"], []),
        )
        for r in rows
    ]


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
    trigger: str | None = Query(default=None, max_length=64, pattern=r"^[a-z][a-z_.]*$"),
    endpoint_id: UUID | None = None,
    limit: int = Query(default=50, ge=1, le=500),
    cursor: str | None = None,
) -> Any:
    before = _uncursor(cursor) if cursor else None
    pool = runtime_of(request).pool
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM deliveries WHERE program_id = $1 "
        "AND ($2::uuid IS NULL OR participant_id = $2) AND ($3::text IS NULL OR channel = $3) "
        "AND ($4::text IS NULL OR status = $4) AND ($5::text IS NULL OR trigger = $5) "
        "AND ($6::uuid IS NULL OR endpoint_id = $6) "
        "AND ($7::timestamptz IS NULL OR (created_at, id) < ($7, $8::uuid)) "
        "ORDER BY created_at DESC, id DESC LIMIT $9",
        program_id,
        participant_id,
        channel,
        status,
        trigger,
        endpoint_id,
        before[0] if before else None,
        before[1] if before else None,
        limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return DeliveryPage(
        items=await _with_attempts(pool, rows),
        next_cursor=_cursor(rows[-1]) if more and rows else None,
    )


async def _one(pool: Any, program_id: UUID, delivery_id: UUID) -> DeliveryOut:
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM deliveries WHERE id = $1 AND program_id = $2",
        delivery_id,
        program_id,
    )
    if row is None:
        raise Problem(404, "delivery-not-found", f"No delivery {delivery_id}", field="delivery_id")
    [out] = await _with_attempts(pool, [row])
    return out


@router.get(
    "/programs/{program_id}/deliveries/{delivery_id}",
    response_model=DeliveryOut,
    dependencies=[Depends(require_program_access)],
)
async def get_delivery(program_id: UUID, delivery_id: UUID, request: Request) -> Any:
    return await _one(runtime_of(request).pool, program_id, delivery_id)


@router.post(
    "/programs/{program_id}/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    status_code=202,
    dependencies=[Depends(require_program_access)],
)
async def redeliver(program_id: UUID, delivery_id: UUID, request: Request) -> Any:
    """Send one webhook message again, with the same ``webhook-id`` (receivers that already
    have it can drop it) and a fresh retry schedule."""
    pool = runtime_of(request).pool
    current = await _one(pool, program_id, delivery_id)
    if current.channel != "webhook":
        raise Problem(
            409,
            "not-redeliverable",
            "Only webhook messages can be redelivered",
            field="delivery_id",
        )
    if current.endpoint_id is None:
        raise Problem(409, "not-redeliverable", "Its endpoint was deleted", field="delivery_id")
    await pool.execute(
        "UPDATE deliveries SET status = 'pending', reason = 'redelivery requested', "
        "attempts = 0, next_attempt_at = now() WHERE id = $1",
        delivery_id,
    )
    return await _one(pool, program_id, delivery_id)
